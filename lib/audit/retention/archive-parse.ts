/**
 * Strict parsing of archive lines and manifests: exactly the fields, in the order and the JSON
 * form, that the writer (run.ts) produces. Anything else is a file Bulkhead did not write, and
 * what the hash chain does not cover (an event's `id` and `recordedAt`, an added field) would
 * otherwise pass unseen. Each parser returns the value or a sentence saying what is wrong.
 */
import { ARCHIVE_FORMAT, MANIFEST_FORMAT, type ArchivedCheckpoint, type ArchivedEvent, type ArchiveHeader, type ArchiveManifest } from "./archive-format";

export const HEX64 = /^[0-9a-f]{64}$/;
export const DIGITS = /^(0|[1-9]\d{0,18})$/;

const HEADER_FIELDS = ["format", "version", "fromSeq", "throughSeq", "anchorPrevHash", "events", "checkpoint"];
const HEADER_CHECKPOINT_FIELDS = ["number", "seq", "hash", "keyId"];
const EVENT_FIELDS = ["kind", "id", "seq", "prevHash", "hash", "at", "type", "actorType", "actorId", "agentId", "taskId", "outcome", "effect", "reason", "ruleId", "dataText"];
const CHECKPOINT_FIELDS = ["kind", "number", "seq", "hash", "signedAt", "prevSignature", "keyId", "signature"];
const MANIFEST_FIELDS = ["format", "version", "file", "sha256", "size", "fromSeq", "throughSeq", "events", "anchorPrevHash", "checkpoint", "createdAt"];

const isStr = (v: unknown): v is string => typeof v === "string";
const isNullableStr = (v: unknown): v is string | null => v === null || typeof v === "string";
const isIsoMs = (v: unknown): v is string => isStr(v) && !Number.isNaN(Date.parse(v)) && new Date(v).toISOString() === v;

/** null when `o` has exactly `fields` in that order; else what differs. */
export function fieldProblem(o: Record<string, unknown>, fields: readonly string[]): string | null {
  const keys = Object.keys(o);
  const extra = keys.filter((k) => !fields.includes(k));
  if (extra.length > 0) return `has field(s) an archive does not have: ${extra.join(", ")}`;
  const missing = fields.filter((k) => !keys.includes(k));
  if (missing.length > 0) return `is missing field(s): ${missing.join(", ")}`;
  if (keys.some((k, i) => k !== fields[i])) return "has its fields in another order than Bulkhead writes them";
  return null;
}

/**
 * A line as JSON, only if it is the exact text `JSON.stringify` writes for it: no spacing, no
 * repeated key (JSON.parse keeps the last), no escape written another way.
 */
export function parseArchiveLine(text: string): Record<string, unknown> | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return "is not JSON";
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "is not a JSON object";
  if (JSON.stringify(value) !== text) return "is not written as Bulkhead writes it (spacing, a repeated key or an escape written another way)";
  return value as Record<string, unknown>;
}

export function parseHeader(o: Record<string, unknown>): ArchiveHeader | string {
  if (o.format !== ARCHIVE_FORMAT || (o.version !== 1 && o.version !== 2)) return "line 1 is not a Bulkhead audit archive header of version 1 or 2";
  const fields = fieldProblem(o, HEADER_FIELDS);
  if (fields) return `the header ${fields}`;
  const cp = o.checkpoint as Record<string, unknown> | null;
  if (![o.fromSeq, o.throughSeq, o.events].every((v) => isStr(v) && DIGITS.test(v))) return "header: fromSeq, throughSeq or events is not an integer";
  if (!isStr(o.anchorPrevHash) || !HEX64.test(o.anchorPrevHash)) return "header: anchorPrevHash is not 64 hex digits";
  if (typeof cp !== "object" || cp === null || Array.isArray(cp) || fieldProblem(cp, HEADER_CHECKPOINT_FIELDS) !== null) return "header: checkpoint is malformed";
  if (!isStr(cp.number) || !DIGITS.test(cp.number) || !isStr(cp.seq) || !isStr(cp.hash) || !HEX64.test(cp.hash) || !isStr(cp.keyId)) return "header: checkpoint is malformed";
  if (cp.seq !== o.throughSeq) return "header: the checkpoint is not at throughSeq";
  return o as unknown as ArchiveHeader;
}

/**
 * `recordedAt`: "required" in version 2; in version 1 "optional" for the first event (archives
 * written before events carried it have none), then as the first event had it.
 */
export function parseEvent(o: Record<string, unknown>, recordedAt: "optional" | "required" | "absent"): ArchivedEvent | string {
  const withIt = recordedAt === "required" || (recordedAt === "optional" && "recordedAt" in o);
  const fields = fieldProblem(o, withIt ? [...EVENT_FIELDS, "recordedAt"] : EVENT_FIELDS);
  if (fields) return `the event ${fields}`;
  for (const k of ["id", "seq", "prevHash", "hash", "at", "type", "actorType", "dataText"]) if (!isStr(o[k])) return `event field ${k} is missing or not a string`;
  for (const k of ["actorId", "agentId", "taskId", "outcome", "effect", "reason", "ruleId"]) if (!isNullableStr(o[k])) return `event field ${k} is not a string or null`;
  if (!DIGITS.test(o.seq as string)) return "event seq is not an integer";
  if (!DIGITS.test(o.id as string)) return `event ${o.seq as string}: id is not an integer`;
  if (!HEX64.test(o.prevHash as string) || !HEX64.test(o.hash as string)) return `event ${o.seq as string}: prevHash or hash is not 64 hex digits`;
  if (!isIsoMs(o.at)) return `event ${o.seq as string}: at is not an ISO time`;
  if (o.recordedAt !== undefined && o.recordedAt !== null && !isIsoMs(o.recordedAt)) return `event ${o.seq as string}: recordedAt is not an ISO time or null`;
  return o as unknown as ArchivedEvent;
}

export function parseCheckpoint(o: Record<string, unknown>): ArchivedCheckpoint | string {
  const fields = fieldProblem(o, CHECKPOINT_FIELDS);
  if (fields) return `the checkpoint ${fields}`;
  for (const k of ["seq", "hash", "keyId", "signature"]) if (!isStr(o[k])) return `checkpoint field ${k} is missing or not a string`;
  for (const k of ["number", "signedAt", "prevSignature"]) if (!isNullableStr(o[k])) return `checkpoint field ${k} is not a string or null`;
  if (!DIGITS.test(o.seq as string) || (o.number !== null && !DIGITS.test(o.number as string))) return "checkpoint seq or number is not an integer";
  if (o.signedAt !== null && !isIsoMs(o.signedAt)) return "checkpoint signedAt is not an ISO time";
  if ((o.number === null) !== (o.signedAt === null)) return "checkpoint number and signedAt are not both set or both null";
  return o as unknown as ArchivedCheckpoint;
}

/** Parses a manifest strictly; a string saying what is wrong otherwise. */
export function parseManifest(text: string): ArchiveManifest | string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return "the manifest is not JSON";
  }
  if (typeof o !== "object" || o === null || Array.isArray(o) || o.format !== MANIFEST_FORMAT || (o.version !== 1 && o.version !== 2)) return "not a Bulkhead audit archive manifest of version 1 or 2";
  const fields = fieldProblem(o, o.version === 2 ? [...MANIFEST_FIELDS, "keyId", "signature"] : MANIFEST_FIELDS);
  if (fields) return `the manifest ${fields}`;
  if (!isStr(o.sha256) || !HEX64.test(o.sha256) || typeof o.size !== "number" || !Number.isSafeInteger(o.size) || !isStr(o.file)) return "the manifest's sha256, size or file is malformed";
  if (!isStr(o.fromSeq) || !isStr(o.throughSeq) || !isStr(o.events) || !isStr(o.anchorPrevHash) || typeof o.checkpoint !== "object" || o.checkpoint === null) return "the manifest's segment is malformed";
  const cp = o.checkpoint as Record<string, unknown>;
  if (fieldProblem(cp, HEADER_CHECKPOINT_FIELDS) !== null || !HEADER_CHECKPOINT_FIELDS.every((k) => isStr(cp[k]))) return "the manifest's checkpoint is malformed";
  if (!isIsoMs(o.createdAt)) return "the manifest's createdAt is not an ISO time";
  if (o.version === 2) {
    if (!isStr(o.keyId) || !/^ack_[0-9a-f]{16}$/.test(o.keyId)) return "the manifest's keyId is not a checkpoint key id (ack_ and 16 hex digits)";
    // 64 bytes in unpadded base64url, in the one encoding that re-encodes to itself.
    if (!isStr(o.signature) || !/^[A-Za-z0-9_-]{86}$/.test(o.signature) || Buffer.from(o.signature, "base64url").toString("base64url") !== o.signature) {
      return "the manifest's signature is not a 64-byte Ed25519 signature in unpadded base64url";
    }
  }
  return o as unknown as ArchiveManifest;
}
