/**
 * One master key, one key per process. Only the launcher and the CLI (which run where the master
 * key lives) hold the master key; they derive each process's key with HKDF-SHA256 under its own
 * label and hand each child only its own:
 *
 * | key | opens | held by |
 * |---|---|---|
 * | dashboard key (symmetric) | task-token signing keys (to mint tokens) | dashboard, CLI |
 * | worker key (X25519 pair) | upstream credentials, the interception CA's key | worker, CLI; the dashboard gets the public half only, to seal credentials to it |
 * | report key (Ed25519 seed) | signs task reports (PDF) | dashboard, CLI |
 * | checkpoint key (Ed25519 seed) | signed format-1 audit checkpoints; kept to verify them | nobody signs with it any more: the launcher's checkpoint signer has a key of its own (lib/audit/outside/signer-key.ts) |
 *
 * So a compromised dashboard holds no key that opens a credential, and a compromised worker holds
 * no key that mints a token. Derivation is deterministic: a master key always gives the same
 * process keys, and rotating the master key rotates them all (`bulkhead keys rotate-master`).
 */
import { hkdfSync } from "node:crypto";
import { checkpointVerificationKey } from "@/lib/audit/checkpoints";
import { keyFingerprint } from "@/lib/crypto/envelope";
import { boxKeyPairFromSeed, boxRecipientFromRaw, type BoxKeyPair, type BoxRecipient } from "@/lib/crypto/sealed-box";

const LABELS = {
  dashboard: "bulkhead/process-key/dashboard/v1",
  worker: "bulkhead/process-key/worker/v1",
  // The label checkpoints were derived under before per-process keys: kept, so checkpoints
  // signed earlier under the same master key still verify.
  checkpoint: "bulkhead/audit-checkpoint/v1",
  report: "bulkhead/report-signing/v1",
} as const;

/** Everything the master key derives; only the launcher and the CLI ever hold all of it. */
export interface ProcessKeys {
  masterFingerprint: string;
  /** Seals and opens task-token signing keys (symmetric envelope). */
  dashboardKey: Buffer;
  /** Opens credentials and the CA key; its public half seals them. */
  workerKey: BoxKeyPair;
  /** Ed25519 seed that signed format-1 audit checkpoints (verification only now). */
  checkpointKey: Buffer;
  /** Ed25519 seed that signs task reports (the dashboard's; lib/reports/signature.ts). */
  reportKey: Buffer;
}

/** What the dashboard process holds. */
export interface DashboardKeys {
  dashboardKey: Buffer;
  /** Seals credentials to the worker; cannot open them. */
  workerRecipient: BoxRecipient;
}

/** What the worker process holds. */
export interface WorkerKeys {
  workerKey: BoxKeyPair;
}

function derive(master: Buffer, label: string): Buffer {
  if (!Buffer.isBuffer(master) || master.length !== 32) throw new TypeError("master key must be 32 bytes");
  return Buffer.from(hkdfSync("sha256", master, Buffer.alloc(0), label, 32));
}

export function deriveProcessKeys(master: Buffer): ProcessKeys {
  return {
    masterFingerprint: keyFingerprint(master),
    dashboardKey: derive(master, LABELS.dashboard),
    workerKey: boxKeyPairFromSeed(derive(master, LABELS.worker)),
    checkpointKey: derive(master, LABELS.checkpoint),
    reportKey: derive(master, LABELS.report),
  };
}

/** The dashboard's keys from their configured form (see lib/config/process-keys.ts). */
export function dashboardKeysFrom(config: { dashboardKey: Buffer; workerPublicKey: Buffer }): DashboardKeys {
  return { dashboardKey: config.dashboardKey, workerRecipient: boxRecipientFromRaw(config.workerPublicKey) };
}

/** The worker's keys from their configured form. */
export function workerKeysFrom(config: { workerKey: Buffer }): WorkerKeys {
  return { workerKey: boxKeyPairFromSeed(config.workerKey) };
}

/**
 * The public facts of one key generation, recorded in the database so every process can check
 * that the keys it was given belong to the data (and a dashboard or worker still running with
 * keys from before a rotation refuses to write instead of writing what nobody can open).
 */
export interface KeyGeneration {
  master: string;
  dashboard: string;
  worker: string;
  workerPublicKey: string;
  checkpointKeyId: string;
}

export function keyGeneration(keys: ProcessKeys): KeyGeneration {
  return {
    master: keys.masterFingerprint,
    dashboard: keyFingerprint(keys.dashboardKey),
    worker: keys.workerKey.fingerprint,
    workerPublicKey: keys.workerKey.raw.toString("base64url"),
    checkpointKeyId: checkpointVerificationKey(keys.checkpointKey).keyId,
  };
}

/** Environment variables of each child process: its own keys, nothing else. */
export function dashboardKeyEnvironment(keys: ProcessKeys): Record<string, string> {
  return {
    BULKHEAD_DASHBOARD_KEY: keys.dashboardKey.toString("base64url"),
    BULKHEAD_WORKER_PUBLIC_KEY: keys.workerKey.raw.toString("base64url"),
    // Public: lets the Audit page check checkpoint signatures (lib/config/audit.ts).
    BULKHEAD_CHECKPOINT_PUBLIC_KEY: (({ keyId, publicKey }) => `${keyId}:${publicKey}`)(checkpointVerificationKey(keys.checkpointKey)),
    // Signs the task reports the dashboard generates; opens nothing.
    BULKHEAD_REPORT_SIGNING_KEY: keys.reportKey.toString("base64url"),
  };
}

export function workerKeyEnvironment(keys: ProcessKeys): Record<string, string> {
  const seed = keys.workerKey.privateKey.export({ type: "pkcs8", format: "der" }).subarray(-32);
  // No checkpoint key: the worker's request path must not be able to sign a checkpoint.
  return { BULKHEAD_WORKER_KEY: Buffer.from(seed).toString("base64url") };
}
