import { createHash, createHmac, hkdfSync, timingSafeEqual, type KeyObject } from "node:crypto";

/**
 * The worker's seal on an approval row: an HMAC over the row's id, task, agent, token, digest and
 * everything its card shows (method, URL, actions, reason, headers, body, approvers needed), with
 * a key derived from the worker's process key. No database role holds that key, so a row inserted
 * by anyone else holding the worker's database role (a card that shows a read, bound to the digest
 * of a destructive request) carries no valid seal, and a grant on it releases nothing
 * (PostgresHoldGate.redeem). The id is part of it, so a seal copied from another row does not fit.
 */
export interface SealedApproval {
  id: string;
  taskId: string;
  agentId: string;
  jti: string | null;
  requestDigest: string;
  method: string;
  url: string;
  actions: unknown;
  reason: string;
  requestHeaders: unknown;
  requestBody: Uint8Array | null;
  requiredApprovals: number;
}

const VERSION = "v1";

/** The seal's key: HKDF of the worker's private key (every worker and the CLI derive the same one). */
export function approvalSealKey(workerPrivateKey: KeyObject): Buffer {
  const der = workerPrivateKey.export({ type: "pkcs8", format: "der" });
  return Buffer.from(hkdfSync("sha256", der, Buffer.alloc(0), "bulkhead/approval-seal/v1", 32));
}

/**
 * JSON with object keys sorted at every level: the same text for a value the worker wrote and the
 * one PostgreSQL's jsonb gives back (it orders keys its own way).
 */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.keys(value)
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

const sha256 = (data: string | Uint8Array) => createHash("sha256").update(data).digest("hex");

function mac(key: Buffer, a: SealedApproval): Buffer {
  const text = JSON.stringify([
    `bulkhead-approval-seal-${VERSION}`,
    a.id.toLowerCase(),
    a.taskId.toLowerCase(),
    a.agentId.toLowerCase(),
    a.jti,
    a.requestDigest,
    a.method,
    a.url,
    sha256(canonicalJson(a.actions)),
    sha256(a.reason),
    sha256(canonicalJson(a.requestHeaders ?? {})),
    a.requestBody ? sha256(a.requestBody) : null,
    a.requiredApprovals,
  ]);
  return createHmac("sha256", key).update(text).digest();
}

export function sealApproval(key: Buffer, approval: SealedApproval): string {
  return `${VERSION}.${mac(key, approval).toString("hex")}`;
}

/** Whether `seal` is the worker's seal of exactly this row. */
export function sealMatches(key: Buffer, approval: SealedApproval, seal: string | null): boolean {
  if (!seal || !seal.startsWith(`${VERSION}.`)) return false;
  const given = Buffer.from(seal.slice(VERSION.length + 1), "hex");
  const expected = mac(key, approval);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
