import { ConfigError } from "./env";

/** One socket Bulkhead listens on: the variable that sets its port, the host it binds, the port. */
export interface Listener {
  variable: string;
  host: string;
  port: number;
}

const ANY = new Set(["0.0.0.0", "::", "[::]", ""]);
const LOOPBACK_NAMES: Record<string, string> = { localhost: "127.0.0.1", "[::1]": "::1" };

/** Two binds of one port collide when they are on the same address, or either is on every address. */
function sameAddress(a: string, b: string): boolean {
  const x = LOOPBACK_NAMES[a.toLowerCase()] ?? a.toLowerCase();
  const y = LOOPBACK_NAMES[b.toLowerCase()] ?? b.toLowerCase();
  return x === y || ANY.has(x) || ANY.has(y);
}

/**
 * Listeners that would take one port twice, one sentence each. Each port is checked free on its
 * own before start-up (cli/runtime/ports.ts), so two variables set to one port passed that check,
 * the launcher printed both URLs and a setup link, and then the second process to bind it failed
 * with "already in use" (by Bulkhead itself) and stopped everything.
 */
export function listenerClashes(listeners: readonly Listener[]): Array<{ variable: string; message: string }> {
  const problems: Array<{ variable: string; message: string }> = [];
  for (let i = 0; i < listeners.length; i++) {
    for (let j = i + 1; j < listeners.length; j++) {
      const a = listeners[i]!;
      const b = listeners[j]!;
      if (a.port === b.port && sameAddress(a.host, b.host)) {
        problems.push({ variable: b.variable, message: `is the same port as ${a.variable} (${a.port}): each listener needs a port of its own` });
      }
    }
  }
  return problems;
}

export function assertDistinctListeners(listeners: readonly Listener[]): void {
  const problems = listenerClashes(listeners);
  if (problems.length > 0) throw new ConfigError(problems.map((p) => `${p.variable} ${p.message}`));
}
