/**
 * The audit archive (docs/audit.md, "Retention"): one JSON Lines file per removed segment and a
 * manifest beside it. Line 1 is a header, then every event of the segment in seq order with every
 * field the chain hashes (data as the exact jsonb text that was hashed), then the checkpoints that
 * cover events of the segment, the segment's own checkpoint last. The manifest holds the file's
 * SHA-256 and size.
 *
 * `ArchiveVerifier` re-verifies an archive without the database, line by line (constant memory):
 * the manifest's digest, every event's hash, every link from the anchor to the segment's
 * checkpoint, and the checkpoints' signatures under the published keys.
 */
import { createHash, type Hash } from "node:crypto";
import { eventHash, GENESIS_HASH } from "../chain";
import { checkpointSignatureValid, type CheckpointKey, type SignedCheckpoint } from "../checkpoints";

export const ARCHIVE_FORMAT = "bulkhead-audit-archive";
export const MANIFEST_FORMAT = "bulkhead-audit-archive-manifest";

export interface ArchiveHeader {
  format: typeof ARCHIVE_FORMAT;
  version: 1;
  fromSeq: string;
  throughSeq: string;
  /** prevHash of the event at fromSeq: 64 zeros for the first segment, else the last marker's anchor. */
  anchorPrevHash: string;
  events: string;
  /** The checkpoint that ends the segment (its seq is throughSeq); it stays in the database. */
  checkpoint: { number: string; seq: string; hash: string; keyId: string };
}

export interface ArchivedEvent {
  kind: "event";
  id: string;
  seq: string;
  prevHash: string;
  hash: string;
  at: string;
  type: string;
  actorType: string;
  actorId: string | null;
  agentId: string | null;
  taskId: string | null;
  outcome: string | null;
  effect: string | null;
  reason: string | null;
  ruleId: string | null;
  /** `data::text`, the exact bytes the chain hashed (JSON: parse it to read it). */
  dataText: string;
  /**
   * When PostgreSQL stored the row (`recorded_at`, not hashed: docs/audit.md, "Two times"); null
   * for an event stored before it was kept. Absent from archives written before it was archived.
   */
  recordedAt?: string | null;
}

export interface ArchivedCheckpoint {
  kind: "checkpoint";
  /** null for a format-1 checkpoint (not chained). */
  number: string | null;
  seq: string;
  hash: string;
  signedAt: string | null;
  prevSignature: string | null;
  keyId: string;
  signature: string;
}

export interface ArchiveManifest {
  format: typeof MANIFEST_FORMAT;
  version: 1;
  file: string;
  sha256: string;
  size: number;
  fromSeq: string;
  throughSeq: string;
  events: string;
  anchorPrevHash: string;
  checkpoint: ArchiveHeader["checkpoint"];
  createdAt: string;
}

export function archivedCheckpoint(cp: SignedCheckpoint): ArchivedCheckpoint {
  return {
    kind: "checkpoint",
    number: cp.chain ? cp.chain.number.toString() : null,
    seq: cp.seq.toString(),
    hash: cp.hash,
    signedAt: cp.chain ? cp.chain.signedAt.toISOString() : null,
    prevSignature: cp.chain ? cp.chain.prevSignature : null,
    keyId: cp.keyId,
    signature: cp.signature,
  };
}

function signedCheckpoint(c: ArchivedCheckpoint): SignedCheckpoint {
  return {
    seq: BigInt(c.seq),
    hash: c.hash,
    keyId: c.keyId,
    signature: c.signature,
    ...(c.number !== null && c.signedAt !== null ? { chain: { number: BigInt(c.number), signedAt: new Date(c.signedAt), prevSignature: c.prevSignature } } : {}),
  };
}

export function archiveFileName(fromSeq: bigint, throughSeq: bigint): string {
  return `audit-${fromSeq.toString().padStart(20, "0")}-${throughSeq.toString().padStart(20, "0")}.jsonl`;
}

export const manifestFileName = (archiveFile: string) => `${archiveFile}.manifest.json`;

export interface ArchiveVerification {
  ok: boolean;
  problems: string[];
  header: ArchiveHeader | null;
  events: number;
  checkpoints: number;
  /** false when no key was given: signatures were not checked. */
  signaturesChecked: boolean;
}

const HEX64 = /^[0-9a-f]{64}$/;
const DIGITS = /^(0|[1-9]\d{0,18})$/;
const MAX_PROBLEMS = 20;

function isStr(v: unknown): v is string {
  return typeof v === "string";
}
function isNullableStr(v: unknown): v is string | null {
  return v === null || typeof v === "string";
}

function parseEvent(o: Record<string, unknown>): ArchivedEvent | string {
  for (const k of ["id", "seq", "prevHash", "hash", "at", "type", "actorType", "dataText"]) if (!isStr(o[k])) return `event field ${k} is missing or not a string`;
  for (const k of ["actorId", "agentId", "taskId", "outcome", "effect", "reason", "ruleId"]) if (!isNullableStr(o[k])) return `event field ${k} is not a string or null`;
  if (!DIGITS.test(o.seq as string)) return "event seq is not an integer";
  const at = new Date(o.at as string);
  if (Number.isNaN(at.getTime()) || at.toISOString() !== o.at) return `event ${o.seq as string}: at is not an ISO time`;
  if (o.recordedAt !== undefined && o.recordedAt !== null) {
    const recorded = isStr(o.recordedAt) ? new Date(o.recordedAt) : null;
    if (recorded === null || Number.isNaN(recorded.getTime()) || recorded.toISOString() !== o.recordedAt) return `event ${o.seq as string}: recordedAt is not an ISO time or null`;
  }
  return o as unknown as ArchivedEvent;
}

function parseCheckpoint(o: Record<string, unknown>): ArchivedCheckpoint | string {
  for (const k of ["seq", "hash", "keyId", "signature"]) if (!isStr(o[k])) return `checkpoint field ${k} is missing or not a string`;
  for (const k of ["number", "signedAt", "prevSignature"]) if (!isNullableStr(o[k])) return `checkpoint field ${k} is not a string or null`;
  if (!DIGITS.test(o.seq as string) || (o.number !== null && !DIGITS.test(o.number as string))) return "checkpoint seq or number is not an integer";
  if (o.signedAt !== null && Number.isNaN(Date.parse(o.signedAt as string))) return "checkpoint signedAt is not a time";
  return o as unknown as ArchivedCheckpoint;
}

function parseHeader(o: Record<string, unknown>): ArchiveHeader | string {
  if (o.format !== ARCHIVE_FORMAT || o.version !== 1) return "line 1 is not a Bulkhead audit archive header of version 1";
  const cp = o.checkpoint as Record<string, unknown> | null;
  if (![o.fromSeq, o.throughSeq, o.events].every((v) => isStr(v) && DIGITS.test(v))) return "header: fromSeq, throughSeq or events is not an integer";
  if (!isStr(o.anchorPrevHash) || !HEX64.test(o.anchorPrevHash)) return "header: anchorPrevHash is not 64 hex digits";
  if (typeof cp !== "object" || cp === null || !isStr(cp.number) || !isStr(cp.seq) || !isStr(cp.hash) || !isStr(cp.keyId)) return "header: checkpoint is malformed";
  if (cp.seq !== o.throughSeq) return "header: the checkpoint is not at throughSeq";
  return o as unknown as ArchiveHeader;
}

/**
 * Feed every byte to `update` and every line to `line`, then call `finish`. `keys`: the published
 * checkpoint keys; null checks everything but signatures (and says so).
 */
export class ArchiveVerifier {
  private readonly digest: Hash = createHash("sha256");
  private size = 0;
  private lineNo = 0;
  private header: ArchiveHeader | null = null;
  private readonly problems: string[] = [];
  private expectedSeq = 0n;
  private prevHash = GENESIS_HASH;
  private events = 0;
  private checkpoints = 0;
  private sawEnd = false;
  private readonly hashes = new Map<string, string>();

  constructor(private readonly keys: readonly CheckpointKey[] | null) {}

  update(bytes: Buffer): void {
    this.digest.update(bytes);
    this.size += bytes.length;
  }

  private problem(p: string): void {
    if (this.problems.length < MAX_PROBLEMS) this.problems.push(p);
  }

  line(text: string): void {
    this.lineNo++;
    if (text === "") return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return this.problem(`line ${this.lineNo} is not JSON`);
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) return this.problem(`line ${this.lineNo} is not a JSON object`);
    const o = value as Record<string, unknown>;
    if (this.lineNo === 1) {
      const h = parseHeader(o);
      if (typeof h === "string") return this.problem(h);
      this.header = h;
      this.expectedSeq = BigInt(h.fromSeq);
      this.prevHash = h.anchorPrevHash;
      return;
    }
    if (!this.header) return;
    if (o.kind === "event") return this.event(o);
    if (o.kind === "checkpoint") return this.checkpoint(o);
    this.problem(`line ${this.lineNo} is neither an event nor a checkpoint`);
  }

  private event(o: Record<string, unknown>): void {
    const e = parseEvent(o);
    if (typeof e === "string") return this.problem(`line ${this.lineNo}: ${e}`);
    if (this.checkpoints > 0) return this.problem(`line ${this.lineNo}: event ${e.seq} after the checkpoints`);
    const seq = BigInt(e.seq);
    if (seq !== this.expectedSeq) this.problem(`event ${this.expectedSeq} is missing (line ${this.lineNo} holds seq ${seq})`);
    else if (e.prevHash !== this.prevHash) this.problem(`event ${seq} does not link to event ${seq - 1n} (prevHash differs)`);
    const recomputed = eventHash({ ...e, seq, at: new Date(e.at) });
    if (recomputed !== e.hash) this.problem(`event ${seq}'s content does not match its hash`);
    this.hashes.set(e.seq, e.hash);
    this.prevHash = e.hash;
    this.expectedSeq = seq + 1n;
    this.events++;
  }

  private checkpoint(o: Record<string, unknown>): void {
    const c = parseCheckpoint(o);
    if (typeof c === "string") return this.problem(`line ${this.lineNo}: ${c}`);
    const h = this.header!;
    this.checkpoints++;
    if (this.hashes.get(c.seq) !== c.hash) this.problem(`checkpoint ${c.number ?? `at seq ${c.seq}`} signs hash ${c.hash} at seq ${c.seq}, which is not the archived event's`);
    if (this.keys !== null && !checkpointSignatureValid(signedCheckpoint(c), this.keys)) {
      this.problem(`checkpoint ${c.number ?? `at seq ${c.seq}`} (key ${c.keyId}) is not signed by a trusted checkpoint key`);
    }
    if (c.number === h.checkpoint.number) {
      this.sawEnd = true;
      if (c.seq !== h.throughSeq || c.hash !== h.checkpoint.hash || c.keyId !== h.checkpoint.keyId) this.problem(`the segment's checkpoint ${c.number} differs from the header's`);
    }
  }

  finish(manifest: ArchiveManifest | null): ArchiveVerification {
    const h = this.header;
    if (!h) this.problem("the archive has no valid header");
    else {
      if (this.expectedSeq - 1n !== BigInt(h.throughSeq)) this.problem(`the archive ends at seq ${this.expectedSeq - 1n}, not at seq ${h.throughSeq}: events are missing`);
      if (BigInt(h.events) !== BigInt(this.events)) this.problem(`the header says ${h.events} events but the archive holds ${this.events}`);
      if (!this.sawEnd) this.problem(`the segment's checkpoint ${h.checkpoint.number} is not in the archive`);
      if (this.prevHash !== h.checkpoint.hash) this.problem(`the last archived event's hash is not the one checkpoint ${h.checkpoint.number} signed`);
    }
    if (manifest) {
      const sha = this.digest.digest("hex");
      if (manifest.sha256 !== sha) this.problem(`the file's SHA-256 is ${sha}, the manifest says ${manifest.sha256}: the archive was changed`);
      if (manifest.size !== this.size) this.problem(`the file has ${this.size} bytes, the manifest says ${manifest.size}`);
      if (h && (manifest.fromSeq !== h.fromSeq || manifest.throughSeq !== h.throughSeq || manifest.checkpoint.number !== h.checkpoint.number || manifest.anchorPrevHash !== h.anchorPrevHash)) {
        this.problem("the manifest describes another segment than the archive's header");
      }
    } else this.problem("no manifest: the file's digest cannot be checked");
    return { ok: this.problems.length === 0, problems: this.problems, header: h, events: this.events, checkpoints: this.checkpoints, signaturesChecked: this.keys !== null };
  }
}

/** Parses a manifest strictly; a string saying what is wrong otherwise. */
export function parseManifest(text: string): ArchiveManifest | string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return "the manifest is not JSON";
  }
  if (typeof o !== "object" || o === null || o.format !== MANIFEST_FORMAT || o.version !== 1) return "not a Bulkhead audit archive manifest of version 1";
  if (!isStr(o.sha256) || !HEX64.test(o.sha256) || typeof o.size !== "number" || !isStr(o.file)) return "the manifest's sha256, size or file is malformed";
  if (!isStr(o.fromSeq) || !isStr(o.throughSeq) || !isStr(o.anchorPrevHash) || typeof o.checkpoint !== "object" || o.checkpoint === null) return "the manifest's segment is malformed";
  return o as unknown as ArchiveManifest;
}
