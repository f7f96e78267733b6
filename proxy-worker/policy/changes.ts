/**
 * What a notification on `bulkhead_policy` says changed (prisma/migrations/20261202003000_policy_notify_rows):
 * `<table>:<key>` for one task, agent, issued token or credential (or a retired secret of a
 * credential, `retired_secrets:<credential id>`, migration 20261207002000), which the worker applies by
 * re-reading that row; anything else (a bare table name for services, settings, sandboxes,
 * signing keys and CAs, an unknown table, a malformed or oversized payload) means: reload
 * everything. The payload only says where to look; what the row says is always read from
 * PostgreSQL, so a forged notification can at most cause a read.
 */
export type PolicyChange = { kind: "task"; id: string } | { kind: "agent"; id: string } | { kind: "token"; jti: string } | { kind: "credential"; id: string };

// A Map, not an object literal: a payload naming "__proto__" or "constructor" finds nothing.
const TABLES = new Map<string, PolicyChange["kind"]>([
  ["tasks", "task"],
  ["agents", "agent"],
  ["issued_tokens", "token"],
  ["credentials", "credential"],
  // A retired secret (keyed by its credential's id) changes what is redacted: the credentials are re-read.
  ["retired_secrets", "credential"],
]);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** A jti is what task-token issuance generates; anything much longer is not one of ours. */
const JTI = /^[A-Za-z0-9_-]{1,128}$/;
/** PostgreSQL refuses payloads of 8000 bytes or more; one that long cannot be a row key anyway. */
const MAX_PAYLOAD = 7999;

/** The change a payload names, or null when it asks for (or can only be served by) a full reload. */
export function parsePolicyChange(payload: string | undefined): PolicyChange | null {
  if (!payload || payload.length > MAX_PAYLOAD) return null;
  const colon = payload.indexOf(":");
  if (colon < 0) return null;
  const kind = TABLES.get(payload.slice(0, colon));
  const key = payload.slice(colon + 1);
  if (!kind) return null;
  if (kind === "token") return JTI.test(key) ? { kind, jti: key } : null;
  return UUID.test(key) ? { kind, id: key } : null;
}
