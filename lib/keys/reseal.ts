/**
 * Re-seals every sealed value (lib/keys/sealed-columns.ts) into one target key generation, row by
 * row, each row in its own conditional UPDATE: an interrupted run leaves every row either as it
 * was or finished, and the next run continues with the rows still left. Each sealed value names
 * the key it was sealed with (its fingerprint), which is how a row is recognised as done.
 *
 * Used for two things:
 * - converting data written before per-process keys (sealed under the master key itself) at start;
 * - rotating the master key (from the old generation, and legacy values, to the new one).
 *
 * Messages name the table and row, never a secret or a key.
 */
import type { Db } from "@/lib/db/client";
import { keyFingerprint, openSecret, sealedKeyFingerprint, sealSecret, SecretIntegrityError } from "@/lib/crypto/envelope";
import { isSealedBox, openBox, sealedBoxRecipient, sealTo, type BoxKeyPair } from "@/lib/crypto/sealed-box";
import { AppError } from "@/lib/errors/app-error";
import type { ProcessKeys } from "./process-keys";
import { SEALED_COLUMNS, type SealedColumn } from "./sealed-columns";

type Sql = Pick<Db, "$queryRawUnsafe" | "$executeRawUnsafe">;
/** What reading needs: a Prisma client, or a plain `pg` connection wrapped to look like one. */
export interface RowReader {
  $queryRawUnsafe<T = unknown>(query: string, ...values: unknown[]): PromiseLike<T>;
}

export interface ResealPlan {
  /** The generation every value ends up in. */
  to: ProcessKeys;
  /** Earlier generations whose values may still be found (a rotation: the old master's). */
  from: readonly ProcessKeys[];
  /** Master keys whose values in the format before per-process keys may be found. */
  legacyMasters: readonly Buffer[];
  /** Also open every value already in the target generation, proving it opens. */
  verify?: boolean;
  /** Called after each row is committed (progress output). */
  onResealed?: (column: SealedColumn, id: string) => void | Promise<void>;
}

export interface ResealResult {
  /** Rows resealed, by column label. */
  resealed: Record<string, number>;
  /** Rows that were already in the target generation. */
  current: number;
}

/** A value sealed with a key that none of the given keys is. */
export class UnknownSealingKeyError extends AppError {
  constructor(column: SealedColumn, id: string, detail: string) {
    super("CONFIG", `The ${column.label} ${id} (${column.table}.${column.column}) ${detail}. Nothing more was changed.`);
    this.name = "UnknownSealingKeyError";
  }
}

type Step = { done: true } | { done: false; open: () => Buffer };

function symmetricFingerprint(sealed: string): string | null {
  try {
    return sealedKeyFingerprint(sealed);
  } catch {
    return null;
  }
}

/** How a value can be opened, or that it is already in the target generation. */
function classify(column: SealedColumn, id: string, aadId: string, sealed: string, plan: ResealPlan): Step {
  const aad = column.aad(aadId);
  const legacy = (fp: string | null) => plan.legacyMasters.find((m) => keyFingerprint(m) === fp);
  if (column.opener === "dashboard") {
    const fp = symmetricFingerprint(sealed);
    if (fp !== null && fp === keyFingerprint(plan.to.dashboardKey)) return { done: true };
    const key = plan.from.map((k) => k.dashboardKey).find((k) => keyFingerprint(k) === fp) ?? legacy(fp);
    if (key) return { done: false, open: () => openSecret(sealed, key, aad) };
    throw new UnknownSealingKeyError(column, id, fp ? `is sealed with an unknown key (${fp})` : "is not a sealed value of a known format");
  }
  if (isSealedBox(sealed)) {
    const fp = sealedBoxRecipient(sealed);
    if (fp === plan.to.workerKey.fingerprint) return { done: true };
    const pair: BoxKeyPair | undefined = plan.from.map((k) => k.workerKey).find((k) => k.fingerprint === fp);
    if (pair) return { done: false, open: () => openBox(pair, sealed, aad) };
    throw new UnknownSealingKeyError(column, id, `is sealed to an unknown worker key (${fp})`);
  }
  // Only the master key itself may have sealed a worker secret symmetrically (the legacy
  // format); one under the dashboard's key would mean the dashboard could read it.
  const fp = symmetricFingerprint(sealed);
  const master = legacy(fp);
  if (master) return { done: false, open: () => openSecret(sealed, master, aad) };
  throw new UnknownSealingKeyError(column, id, fp ? `is sealed with a key that may not seal it (${fp})` : "is not a sealed value of a known format");
}

function sealFor(column: SealedColumn, keys: ProcessKeys, plaintext: Buffer, aad: string): string {
  return column.opener === "dashboard" ? sealSecret(plaintext, keys.dashboardKey, aad) : sealTo(keys.workerKey, plaintext, aad);
}

function openWith(column: SealedColumn, keys: ProcessKeys, sealed: string, aad: string): Buffer {
  return column.opener === "dashboard" ? openSecret(sealed, keys.dashboardKey, aad) : openBox(keys.workerKey, sealed, aad);
}

function withRow<T>(column: SealedColumn, id: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof SecretIntegrityError) throw new UnknownSealingKeyError(column, id, `does not open: ${error.message}`);
    throw error;
  }
}

async function rowsOf(sql: RowReader, c: SealedColumn): Promise<Array<{ id: string; aad_id: string; sealed: string }>> {
  return sql.$queryRawUnsafe(`SELECT ${c.idColumn}::text AS id, ${c.aadColumn ?? c.idColumn}::text AS aad_id, ${c.column} AS sealed FROM ${c.table} WHERE ${c.column} IS NOT NULL ORDER BY ${c.idColumn}`);
}

async function currentValue(sql: Sql, c: SealedColumn, id: string): Promise<string | null> {
  const rows: Array<{ sealed: string }> = await sql.$queryRawUnsafe(`SELECT ${c.column} AS sealed FROM ${c.table} WHERE ${c.idColumn} = $1::${c.idType}`, id);
  return rows[0]?.sealed ?? null;
}

/** Brings one row into the target generation; true when it was changed. */
async function resealRow(sql: Sql, c: SealedColumn, id: string, aadId: string, sealed: string, plan: ResealPlan): Promise<boolean> {
  let value: string | null = sealed;
  // A concurrent writer (rotate, delete) may change the row between read and update: re-read.
  for (let attempt = 0; value !== null && attempt < 5; attempt++) {
    const aad = c.aad(aadId);
    const step = withRow(c, id, () => classify(c, id, aadId, value!, plan));
    if (step.done) {
      if (plan.verify) withRow(c, id, () => openWith(c, plan.to, value!, aad).fill(0));
      return false;
    }
    const plaintext = withRow(c, id, step.open);
    let next: string;
    try {
      next = sealFor(c, plan.to, plaintext, aad);
      openWith(c, plan.to, next, aad).fill(0); // never store what the new key cannot open
    } finally {
      plaintext.fill(0);
    }
    const n = await sql.$executeRawUnsafe(`UPDATE ${c.table} SET ${c.column} = $1 WHERE ${c.idColumn} = $2::${c.idType} AND ${c.column} = $3`, next, id, value);
    if (n === 1) return true;
    value = await currentValue(sql, c, id);
  }
  if (value !== null) throw new AppError("CONFLICT", `The ${c.label} ${id} kept changing while it was being resealed; run the command again.`);
  return false;
}

/** Reseals every sealed value into `plan.to`. Safe to run again at any point. */
export async function resealAll(sql: Sql, plan: ResealPlan): Promise<ResealResult> {
  const result: ResealResult = { resealed: {}, current: 0 };
  for (const column of SEALED_COLUMNS) {
    for (const row of await rowsOf(sql, column)) {
      if (await resealRow(sql, column, row.id, row.aad_id, row.sealed, plan)) {
        result.resealed[column.label] = (result.resealed[column.label] ?? 0) + 1;
        await plan.onResealed?.(column, row.id);
      } else {
        result.current++;
      }
    }
  }
  return result;
}

/**
 * Whether resealAll(plan) would change a row, reading only. A value it could not handle (an
 * unknown key, a malformed value) also counts: the caller then runs resealAll, which names it.
 */
export async function resealNeeded(sql: RowReader, plan: ResealPlan): Promise<boolean> {
  for (const column of SEALED_COLUMNS) {
    for (const row of await rowsOf(sql, column)) {
      try {
        if (!classify(column, row.id, row.aad_id, row.sealed, plan).done) return true;
      } catch {
        return true;
      }
    }
  }
  return false;
}

/** How many values each key fingerprint seals (for `bulkhead keys status`). */
export async function sealedValueCounts(sql: RowReader): Promise<Array<{ label: string; fingerprint: string; count: number }>> {
  const counts = new Map<string, { label: string; fingerprint: string; count: number }>();
  for (const column of SEALED_COLUMNS) {
    for (const row of await rowsOf(sql, column)) {
      const fingerprint = isSealedBox(row.sealed) ? safe(() => sealedBoxRecipient(row.sealed)) : symmetricFingerprint(row.sealed) ?? "malformed";
      const key = `${column.label}\0${fingerprint}`;
      const entry = counts.get(key) ?? { label: column.label, fingerprint, count: 0 };
      entry.count++;
      counts.set(key, entry);
    }
  }
  return [...counts.values()];
}

function safe(fn: () => string): string {
  try {
    return fn();
  } catch {
    return "malformed";
  }
}
