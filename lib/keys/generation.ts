/**
 * The key generation in force, recorded in `settings` (public facts only: fingerprints and the
 * worker's public key), so that a process started with keys that do not belong to the data finds
 * out before it writes anything.
 *
 * Every writer of a sealed value (a credential, a signing key, a CA) checks the generation inside
 * its own transaction under a shared advisory lock; `bulkhead keys rotate-master` switches the
 * generation under the exclusive lock. So a dashboard still running with the old keys after a
 * rotation cannot write a secret that only the retired key opens: its write is refused, and the
 * writes that raced the switch were committed before it and resealed by it.
 */
import type { Db } from "@/lib/db/client";
import type { Prisma } from "@/lib/generated/prisma/client";
import { AppError } from "@/lib/errors/app-error";
import type { KeyGeneration } from "./process-keys";

export const GENERATION_SETTING = "process_keys";
/** Held shared by writers of sealed values, exclusively by the rotation's switch-over. */
export const KEYS_LOCK = 72707372;

type Reader = Pick<Db, "setting">;
type Tx = Prisma.TransactionClient;

export function parseGeneration(value: unknown): KeyGeneration | null {
  if (typeof value !== "object" || value === null) return null;
  const v = value as Record<string, unknown>;
  const fields = ["master", "dashboard", "worker", "workerPublicKey", "checkpointKeyId"] as const;
  if (!fields.every((f) => typeof v[f] === "string")) return null;
  return { master: v.master as string, dashboard: v.dashboard as string, worker: v.worker as string, workerPublicKey: v.workerPublicKey as string, checkpointKeyId: v.checkpointKeyId as string };
}

export async function readKeyGeneration(db: Reader): Promise<KeyGeneration | null> {
  const row = await db.setting.findUnique({ where: { key: GENERATION_SETTING } });
  return row ? parseGeneration(row.value) : null;
}

/** Records (or replaces) the generation in force. Only holders of the master key call this. */
export async function writeKeyGeneration(db: Reader, generation: KeyGeneration): Promise<void> {
  const value = { ...generation } as unknown as Prisma.InputJsonValue;
  await db.setting.upsert({ where: { key: GENERATION_SETTING }, create: { key: GENERATION_SETTING, value }, update: { value } });
}

const NOT_RECORDED =
  "Bulkhead's process keys are not recorded in this database: start Bulkhead with `bulkhead start` " +
  "(or run `bulkhead keys env worker`), which records them.";

function staleKeys(what: string): AppError {
  const message =
    `The ${what} this process was started with does not belong to the keys the data is sealed with: ` +
    "the master key was rotated (or the process was given another installation's keys). Restart Bulkhead " +
    "so every process gets the current keys. Nothing was written.";
  return new AppError("CONFIG", message);
}

/**
 * For writers, inside their transaction: the data's generation must be the one whose key this
 * process seals with. Holds the shared keys lock until the transaction ends.
 */
export async function assertSealingKeyCurrent(tx: Tx, expected: { dashboard: string } | { worker: string }): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock_shared(${KEYS_LOCK})`;
  const generation = await readKeyGeneration(tx);
  if (!generation) throw new AppError("CONFIG", NOT_RECORDED);
  if ("dashboard" in expected && generation.dashboard !== expected.dashboard) throw staleKeys("dashboard key (BULKHEAD_DASHBOARD_KEY)");
  if ("worker" in expected && generation.worker !== expected.worker) throw staleKeys("worker key (BULKHEAD_WORKER_KEY / BULKHEAD_WORKER_PUBLIC_KEY)");
}

/** For a process at start: every key it holds must belong to the data's generation. */
export async function assertProcessKeysCurrent(db: Reader, held: Partial<Pick<KeyGeneration, "dashboard" | "worker" | "checkpointKeyId">>): Promise<void> {
  const generation = await readKeyGeneration(db);
  if (!generation) throw new AppError("CONFIG", NOT_RECORDED);
  if (held.dashboard !== undefined && held.dashboard !== generation.dashboard) throw staleKeys("dashboard key (BULKHEAD_DASHBOARD_KEY)");
  if (held.worker !== undefined && held.worker !== generation.worker) throw staleKeys("worker key (BULKHEAD_WORKER_KEY / BULKHEAD_WORKER_PUBLIC_KEY)");
  if (held.checkpointKeyId !== undefined && held.checkpointKeyId !== generation.checkpointKeyId) throw staleKeys("checkpoint key (BULKHEAD_CHECKPOINT_KEY)");
}
