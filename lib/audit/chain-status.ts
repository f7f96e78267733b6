/**
 * The chain's status shown at the top of the Audit page and returned by the API: "verified up to
 * seq N at time T", or the first broken event. Verifying a million events takes seconds, so the
 * result is kept per database handle and extended incrementally: a later check verifies only the
 * events after the last verified one, anchored on the hash that was verified for it (an anchor
 * that changed means a rewrite, and a full verification finds where). A full verification runs
 * again every FULL_EVERY_MS, because an edit further back that leaves the anchor alone is only
 * visible to a full pass. A page waits a moment for a running check and otherwise shows the
 * previous result, saying that a check is running.
 */
import { checkpointVerificationKey, type CheckpointKey } from "./checkpoints";
import { auditSql, type AuditDb } from "./sql";
import { verifyAuditChain, type AuditChainVerification } from "./verify";

export interface ChainStatus {
  /** `pending`: no verification has finished yet; `error`: the last one could not run. */
  state: "verified" | "broken" | "empty" | "pending" | "error";
  /** When the result was established. */
  checkedAt: Date | null;
  verifiedThroughSeq: string | null;
  lastHash: string | null;
  broken: { firstBadSeq: string; problem: string; detail: string } | null;
  /**
   * Set when retention removed the chain's start: the kept chain begins at firstKeptSeq, anchored
   * on checkpoint checkpointNumber (the removed events are in the archive named by the marker).
   */
  retained: { firstKeptSeq: string; checkpointNumber: string; archivedCheckpoints: number } | null;
  /** Whether checkpoint signatures were checked (the process holds a verification key). */
  signaturesChecked: boolean;
  verifying: boolean;
  error: string | null;
}

const MIN_INTERVAL_MS = 5_000;
const BROKEN_RETRY_MS = 60_000;
const FULL_EVERY_MS = 15 * 60_000;

interface Entry {
  status: ChainStatus;
  lastFullAt: number;
  lastRunAt: number;
  inFlight: Promise<void> | null;
}

const entries = new WeakMap<object, Entry>();

export interface ChainStatusOptions {
  /** Trusted checkpoint keys; null when this process holds none (signatures are then not checked). */
  checkpointKeys: readonly CheckpointKey[] | null;
  /** How long to wait for a running check before answering with the previous result. */
  waitMs?: number;
  /** Verify the whole chain now, whatever the last check was (tests, an operator's request). */
  force?: boolean;
}

function initial(signaturesChecked: boolean): ChainStatus {
  return { state: "pending", checkedAt: null, verifiedThroughSeq: null, lastHash: null, broken: null, retained: null, signaturesChecked, verifying: false, error: null };
}

export async function chainStatus(db: AuditDb, options: ChainStatusOptions): Promise<ChainStatus> {
  let entry = entries.get(db);
  if (!entry) {
    entry = { status: initial(options.checkpointKeys !== null), lastFullAt: 0, lastRunAt: 0, inFlight: null };
    entries.set(db, entry);
  }
  const e = entry;
  const now = Date.now();
  const interval = e.status.state === "broken" || e.status.state === "error" ? BROKEN_RETRY_MS : MIN_INTERVAL_MS;
  if (!e.inFlight && (options.force || now - e.lastRunAt >= interval)) {
    e.lastRunAt = now;
    e.inFlight = refresh(db, e, options.checkpointKeys, options.force ?? false).finally(() => {
      e.inFlight = null;
    });
  }
  if (e.inFlight) {
    const wait = options.waitMs ?? 1_500;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([e.inFlight, new Promise<void>((resolve) => (timer = setTimeout(resolve, wait)))]);
    clearTimeout(timer);
  }
  return { ...e.status, verifying: e.inFlight !== null };
}

async function refresh(db: AuditDb, e: Entry, keys: readonly CheckpointKey[] | null, forceFull: boolean): Promise<void> {
  const signaturesChecked = keys !== null;
  try {
    const previous = e.status;
    const full = forceFull || previous.state !== "verified" || Date.now() - e.lastFullAt >= FULL_EVERY_MS || previous.signaturesChecked !== signaturesChecked;
    let result: AuditChainVerification;
    if (!full && previous.verifiedThroughSeq !== null && (await anchorUnchanged(db, previous.verifiedThroughSeq, previous.lastHash))) {
      result = await verifyAuditChain(db, { fromSeq: BigInt(previous.verifiedThroughSeq) + 1n, checkpointKeys: keys });
    } else {
      result = await verifyAuditChain(db, { checkpointKeys: keys });
      e.lastFullAt = Date.now();
    }
    e.status = toStatus(result, signaturesChecked);
  } catch (error) {
    e.status = { ...e.status, state: e.status.state === "pending" ? "error" : e.status.state, error: error instanceof Error ? error.message : String(error) };
  }
}

async function anchorUnchanged(db: AuditDb, seq: string, hash: string | null): Promise<boolean> {
  if (seq === "0") return hash !== null;
  const [row] = await auditSql(db).query<{ hash: string | null }>("SELECT hash FROM audit_events WHERE seq = $1::bigint", [seq]);
  return row !== undefined && row.hash === hash;
}

function toStatus(r: AuditChainVerification, signaturesChecked: boolean): ChainStatus {
  const checkedAt = new Date();
  if (!r.ok) {
    return {
      state: "broken",
      checkedAt,
      verifiedThroughSeq: r.firstBadSeq > 0n ? (r.firstBadSeq - 1n).toString() : null,
      lastHash: null,
      broken: { firstBadSeq: r.firstBadSeq.toString(), problem: r.problem, detail: r.detail },
      retained: null,
      signaturesChecked,
      verifying: false,
      error: null,
    };
  }
  return {
    state: r.lastSeq === 0n ? "empty" : "verified",
    checkedAt,
    verifiedThroughSeq: r.lastSeq.toString(),
    lastHash: r.lastHash,
    broken: null,
    retained: r.retention
      ? { firstKeptSeq: r.retention.firstKeptSeq.toString(), checkpointNumber: r.retention.checkpointNumber.toString(), archivedCheckpoints: r.retention.archivedCheckpoints }
      : null,
    signaturesChecked,
    verifying: false,
    error: null,
  };
}

/** The checkpoint verification keys a process was given (its own public key and retired ones). */
export function trustedCheckpointKeys(options: { publicKey?: CheckpointKey | null; checkpointKey?: Buffer | null; retired?: readonly CheckpointKey[] }): CheckpointKey[] | null {
  const keys: CheckpointKey[] = [...(options.retired ?? [])];
  if (options.publicKey) keys.push(options.publicKey);
  if (options.checkpointKey) keys.push(checkpointVerificationKey(options.checkpointKey));
  return options.publicKey || options.checkpointKey ? keys : null;
}
