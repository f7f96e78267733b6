import type { Db } from "@/lib/db/client";
import type { Prisma } from "@/lib/generated/prisma/client";
import { recordAuditEvent } from "@/lib/audit/record";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { keyFingerprint } from "@/lib/crypto/envelope";
import { assertSealingKeyCurrent } from "@/lib/keys/generation";
import {
  createStoredSigningKey,
  loadSigningKey,
  rotateSigningKey,
  type LoadedSigningKey,
  type RotationChange,
  type SigningKeyStore,
  type StoredSigningKey,
  type VerificationKeyRecord,
} from "./key-ring";
import { keyStatusAt, SIGNING_ALG, type PublicSigningJwk } from "./keys";

/** Serialises key creation and rotation across processes (two active keys would be confusing). */
const KEY_LOCK = 72707370;

type Tx = Prisma.TransactionClient;

function toStored(row: {
  kid: string;
  publicJwk: unknown;
  privateKeySealed: string;
  createdAt: Date;
  retiringAt: Date | null;
  verifyUntil: Date | null;
  retiredAt: Date | null;
}): StoredSigningKey {
  return {
    kid: row.kid,
    alg: SIGNING_ALG,
    publicJwk: row.publicJwk as PublicSigningJwk,
    privateKeySealed: row.privateKeySealed,
    createdAt: row.createdAt,
    retiringAt: row.retiringAt,
    verifyUntil: row.verifyUntil,
    retiredAt: row.retiredAt,
  };
}

/** The Postgres implementation of the key ring's storage, inside one transaction. */
class PrismaSigningKeyStore implements SigningKeyStore {
  constructor(private readonly tx: Tx) {}

  async listKeys(): Promise<StoredSigningKey[]> {
    return (await this.tx.signingKey.findMany({ orderBy: { createdAt: "asc" } })).map(toStored);
  }

  async latestTokenExpiry(kid: string): Promise<Date | null> {
    const r = await this.tx.issuedToken.aggregate({ where: { kid }, _max: { expiresAt: true } });
    return r._max.expiresAt;
  }

  async commitRotation(change: RotationChange): Promise<void> {
    await insertKey(this.tx, change.added);
    for (const r of change.retiring) {
      await this.tx.signingKey.update({
        where: { kid: r.kid },
        data: { status: "retiring", retiringAt: r.retiringAt, verifyUntil: r.verifyUntil },
      });
    }
  }
}

async function insertKey(tx: Tx, key: StoredSigningKey): Promise<void> {
  await tx.signingKey.create({
    data: {
      kid: key.kid,
      alg: key.alg,
      publicJwk: key.publicJwk as unknown as Prisma.InputJsonValue,
      privateKeySealed: key.privateKeySealed,
      createdAt: key.createdAt,
      status: "active",
    },
  });
}

/** Serialises key changes, and refuses a dashboard key that is not the data's (e.g. after a master-key rotation). */
async function lock(tx: Tx, dashboardKey: Buffer): Promise<void> {
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(${KEY_LOCK})`;
  await assertSealingKeyCurrent(tx, { dashboard: keyFingerprint(dashboardKey) });
}

/** On first start (or if every key was retired) creates the signing key. Returns its kid if created. */
export async function ensureSigningKey(db: Db, dashboardKey: Buffer, now = new Date()): Promise<string | null> {
  return db.$transaction(async (tx) => {
    await lock(tx, dashboardKey);
    const keys = (await tx.signingKey.findMany()).map(toStored);
    if (keys.some((k) => keyStatusAt(k, now) === "active")) return null;
    const key = await createStoredSigningKey(dashboardKey, now);
    await insertKey(tx, key);
    await recordAuditEvent(tx, { type: "key.created", actor: { kind: "system", label: "start-up" }, data: { kid: key.kid } });
    return key.kid;
  });
}

/** The new key signs at once; old keys verify until the last token they signed expires. */
export async function rotateKeys(
  db: Db,
  actor: Actor,
  dashboardKey: Buffer,
  options: { maxTokenTtlSeconds: number },
  now = new Date(),
): Promise<RotationChange> {
  assertCan(actor, "settings:write");
  return db.$transaction(async (tx) => {
    await lock(tx, dashboardKey);
    const change = await rotateSigningKey(new PrismaSigningKeyStore(tx), dashboardKey, now, options);
    await recordAuditEvent(tx, {
      type: "key.rotated",
      actor,
      data: { kid: change.added.kid, retiring: change.retiring.map((r) => ({ kid: r.kid, verifyUntil: r.verifyUntil.toISOString() })) },
    });
    return change;
  });
}

/** Marks keys whose verification window is over as retired (the status column is for display). */
export async function retireSpentKeys(db: Db, now = new Date()): Promise<number> {
  const keys = await db.signingKey.findMany({ where: { status: { not: "retired" } } });
  let n = 0;
  for (const k of keys) {
    if (keyStatusAt(toStored(k), now) === "retired") {
      await db.signingKey.update({ where: { kid: k.kid }, data: { status: "retired", retiredAt: k.retiredAt ?? now } });
      n++;
    }
  }
  return n;
}

export async function loadActiveSigningKey(db: Db, dashboardKey: Buffer, now = new Date()): Promise<LoadedSigningKey | undefined> {
  return loadSigningKey((await db.signingKey.findMany()).map(toStored), dashboardKey, now);
}

/** Public halves of every key, for verifiers (status is derived from the timestamps at use). */
export async function loadVerificationKeys(db: Pick<Db, "signingKey">): Promise<VerificationKeyRecord[]> {
  const rows = await db.signingKey.findMany({
    select: { kid: true, publicJwk: true, createdAt: true, retiringAt: true, verifyUntil: true, retiredAt: true },
  });
  return rows.map((r) => ({ ...r, publicJwk: r.publicJwk as unknown as PublicSigningJwk }));
}

export async function listSigningKeys(db: Db, actor: Actor, now = new Date()) {
  assertCan(actor, "read");
  const rows = await db.signingKey.findMany({ orderBy: { createdAt: "desc" } });
  const counts = await db.issuedToken.groupBy({ by: ["kid"], _count: { _all: true } });
  const byKid = new Map(counts.map((c) => [c.kid, c._count._all]));
  return rows.map((r) => ({
    kid: r.kid,
    alg: r.alg,
    status: keyStatusAt(toStored(r), now),
    createdAt: r.createdAt,
    retiringAt: r.retiringAt,
    verifyUntil: r.verifyUntil,
    tokensSigned: byKid.get(r.kid) ?? 0,
  }));
}
