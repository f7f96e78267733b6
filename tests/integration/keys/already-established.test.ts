import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateMasterKey, keyFingerprint, parseMasterKey, sealSecret } from "@/lib/crypto/envelope";
import { createPrismaClient, type Db } from "@/lib/db/client";
import { STAGED_FINGERPRINT_SETTING } from "@/lib/identity/master-key";
import { establishProcessKeys, keysAlreadyEstablished } from "@/lib/keys/establish";
import { GENERATION_SETTING, readKeyGeneration, writeKeyGeneration } from "@/lib/keys/generation";
import type { RowReader } from "@/lib/keys/reseal";
import { credentialAad } from "@/lib/vault/view";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { unique } from "../../support/factories";

/**
 * The CLI's shortcut before a keyed command: one plain read that says the data already records
 * exactly what establishProcessKeys would write. Every way the data can differ must send the CLI
 * down the full path (which writes, converts or refuses), or a command would run with keys the
 * data does not have, or leave a value sealed the old way unconverted.
 */
describe("keysAlreadyEstablished: a read that the keys are in force, or null", () => {
  let t: TestDatabase;
  let ownerDb: Db;
  let dashboard: pg.Client;
  let owner: pg.Client;
  const master = parseMasterKey(generateMasterKey());
  const reader = (client: pg.Client): RowReader => ({ $queryRawUnsafe: async <R>(q: string, ...v: unknown[]) => (await client.query(q, v)).rows as R });

  beforeAll(async () => {
    t = await createTestDatabase();
    ownerDb = createPrismaClient(t.ownerUrl, 2);
    dashboard = new pg.Client({ connectionString: t.url });
    owner = new pg.Client({ connectionString: t.ownerUrl });
    await Promise.all([dashboard.connect(), owner.connect()]);
  });
  afterAll(async () => {
    await Promise.all([dashboard?.end(), owner?.end()]);
    await ownerDb?.$disconnect();
    await t?.drop();
  });

  it("is null before anything is recorded, and the keys once a start has recorded them (read as the dashboard's role and as the owner)", async () => {
    expect(await keysAlreadyEstablished(reader(dashboard), master)).toBeNull();
    const { keys } = await establishProcessKeys(ownerDb, master);
    for (const client of [dashboard, owner]) {
      const found = await keysAlreadyEstablished(reader(client), master);
      expect(found?.masterFingerprint).toBe(keys.masterFingerprint);
      expect(found?.dashboardKey.equals(keys.dashboardKey)).toBe(true);
      expect(found?.workerKey.fingerprint).toBe(keys.workerKey.fingerprint);
    }
  });

  it("is null for another master key: the full path then refuses it with the reason", async () => {
    const other = parseMasterKey(generateMasterKey());
    expect(await keysAlreadyEstablished(reader(dashboard), other)).toBeNull();
    await expect(establishProcessKeys(ownerDb, other)).rejects.toThrow(/is not the one that encrypted this database's secrets/);
  });

  it("is null while a master-key rotation is unfinished", async () => {
    await ownerDb.setting.create({ data: { key: STAGED_FINGERPRINT_SETTING, value: keyFingerprint(parseMasterKey(generateMasterKey())) } });
    try {
      expect(await keysAlreadyEstablished(reader(dashboard), master)).toBeNull();
      await expect(establishProcessKeys(ownerDb, master)).rejects.toThrow(/rotation .* is unfinished/);
    } finally {
      await ownerDb.setting.delete({ where: { key: STAGED_FINGERPRINT_SETTING } });
    }
    expect(await keysAlreadyEstablished(reader(dashboard), master)).not.toBeNull();
  });

  it("is null when the recorded generation differs in any part, or is missing", async () => {
    const recorded = (await readKeyGeneration(ownerDb))!;
    for (const field of Object.keys(recorded) as Array<keyof typeof recorded>) {
      await writeKeyGeneration(ownerDb, { ...recorded, [field]: `${recorded[field]}x` });
      expect(await keysAlreadyEstablished(reader(dashboard), master), field).toBeNull();
    }
    await ownerDb.setting.delete({ where: { key: GENERATION_SETTING } });
    expect(await keysAlreadyEstablished(reader(dashboard), master)).toBeNull();
    await establishProcessKeys(ownerDb, master); // records it again
    expect(await keysAlreadyEstablished(reader(dashboard), master)).not.toBeNull();
  });

  it("is null while a value sealed the old way (under the master key itself) is left, and the keys again once the full path converted it", async () => {
    const id = randomUUID();
    await ownerDb.credential.create({
      data: { id, name: unique("legacy"), scheme: "https", host: "legacy.example.test", port: 443, headerTemplate: "Authorization: Bearer {secret}", secretSealed: sealSecret("sk_legacy", master, credentialAad(id)) },
    });
    expect(await keysAlreadyEstablished(reader(dashboard), master)).toBeNull();
    const { converted } = await establishProcessKeys(ownerDb, master);
    expect(converted).toEqual({ credential: 1 });
    expect(await keysAlreadyEstablished(reader(dashboard), master)).not.toBeNull();
  });

  it("is null when a value is sealed with a key nobody knows: the full path names it", async () => {
    const id = randomUUID();
    const stranger = parseMasterKey(generateMasterKey());
    await ownerDb.credential.create({
      data: { id, name: unique("stranger"), scheme: "https", host: "stranger.example.test", port: 443, headerTemplate: "Authorization: Bearer {secret}", secretSealed: sealSecret("sk_x", stranger, credentialAad(id)) },
    });
    try {
      expect(await keysAlreadyEstablished(reader(dashboard), master)).toBeNull();
      await expect(establishProcessKeys(ownerDb, master)).rejects.toThrow(new RegExp(`credential ${id} `));
    } finally {
      await ownerDb.credential.delete({ where: { id } });
    }
  });
});
