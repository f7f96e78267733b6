// Stands in for `server-only` outside Next's server bundle (tests import server modules directly).
export {};
