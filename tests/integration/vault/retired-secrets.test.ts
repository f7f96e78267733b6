import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Actor } from "@/lib/auth/actor";
import type { RetiredSecretsConfig } from "@/lib/config/retired-secrets";
import { createPrismaClient, type Db } from "@/lib/db/client";
import { addCredential, deleteCredential, loadRetiredSecrets, pruneRetiredSecrets, rotateCredential, serviceKey } from "@/lib/vault";
import { secretForms } from "@/lib/vault/secret-forms";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";
import { establishTestKeys, type TestKeys } from "../../support/keys";
import { randomSecret } from "./secret-search";

/**
 * Secrets a rotation replaced or a deletion removed (lib/vault/retired-secrets.ts): every one kept,
 * sealed, for the retention window and within the count per service, pruned beyond both; the
 * worker's role reads them and cannot write them.
 */
describe("retired secrets through the real database", () => {
  let t: TestDatabase;
  let keys: TestKeys;
  let admin: Actor;
  let workerDb: Db;
  const limits: RetiredSecretsConfig = { retentionDays: 90, perService: 3 };

  beforeAll(async () => {
    t = await createTestDatabase();
    keys = await establishTestKeys(t.db, { signingKey: false });
    admin = (await makeUser(t.db, "admin")).actor;
    workerDb = createPrismaClient(t.workerUrl, 2);
  });
  afterAll(async () => {
    await workerDb.$disconnect();
    await t.drop();
  });

  const newCredential = async (secret: string) => {
    const host = `${unique("retired")}.example.test`;
    const view = await addCredential(t.db, admin, keys.workerKey, { name: unique("retired"), host, environments: "*", headerTemplate: "Authorization: Bearer {secret}", secret });
    return { id: view.id, endpoint: serviceKey("https", host, 443) };
  };
  /** Whether the worker's load (as the worker's role) redacts `secret` at `endpoint`. */
  const redacted = async (endpoint: string, secret: string, bounds = limits) => ((await loadRetiredSecrets(workerDb, keys.workerKey, bounds)).byEndpoint.get(endpoint) ?? []).includes(secret);

  it("keeps every secret rotations replaced and the deleted credential's, sealed as stored, the newest few per service", async () => {
    const secrets = Array.from({ length: 6 }, () => randomSecret("sk_"));
    const { id, endpoint } = await newCredential(secrets[0]!);
    for (const next of secrets.slice(1)) await rotateCredential(t.db, admin, keys.workerKey, id, next, limits);
    // Five replaced; the newest three kept (this test's credentials are all of the service "unknown").
    const rows = await t.db.retiredSecret.findMany({ where: { credentialId: id }, orderBy: { retiredAt: "asc" } });
    expect(rows.map((r) => r.reason)).toEqual(["rotated", "rotated", "rotated"]);
    for (const row of rows) for (const s of secrets) for (const form of secretForms(s)) expect(JSON.stringify(row).includes(form), form).toBe(false);
    expect(await Promise.all(secrets.map((s) => redacted(endpoint, s)))).toEqual([false, false, true, true, true, false]);

    await deleteCredential(t.db, admin, id, limits);
    expect(await t.db.credential.count({ where: { id } })).toBe(0);
    expect((await t.db.retiredSecret.findMany({ where: { credentialId: id }, orderBy: { retiredAt: "asc" } })).map((r) => r.reason)).toEqual(["rotated", "rotated", "deleted"]);
    expect(await Promise.all(secrets.map((s) => redacted(endpoint, s)))).toEqual([false, false, false, true, true, true]);
    const set = await loadRetiredSecrets(workerDb, keys.workerKey, limits);
    // "unknown" is no service anyone shares: redacted at the endpoint only.
    expect(set.byService.has("unknown")).toBe(false);
  });

  it("prunes by age: the worker ignores what is past the window at once, the next write removes it", async () => {
    const [first, second, third] = [randomSecret("sk_"), randomSecret("sk_"), randomSecret("sk_")];
    await t.db.retiredSecret.deleteMany({});
    const { id, endpoint } = await newCredential(first);
    await rotateCredential(t.db, admin, keys.workerKey, id, second, limits);
    // 91 days ago (no runtime role may rewrite retired_at: done as the superuser).
    await t.adminDb().$executeRaw`UPDATE retired_secrets SET retired_at = now() - interval '91 days' WHERE credential_id = ${id}::uuid`;
    expect(await redacted(endpoint, first)).toBe(false);
    expect(await redacted(endpoint, first, { ...limits, retentionDays: 92 })).toBe(true);
    await rotateCredential(t.db, admin, keys.workerKey, id, third, limits);
    expect((await t.db.retiredSecret.findMany({ where: { credentialId: id } })).length).toBe(1);
    expect(await redacted(endpoint, first, { ...limits, retentionDays: 92 })).toBe(false);
    expect(await redacted(endpoint, second)).toBe(true);
  });

  it("counts per service: one service's many rotations never push out another's", async () => {
    const at = (minutesAgo: number) => new Date(Date.now() - minutesAgo * 60_000);
    const row = (serviceId: string | null, minutesAgo: number) => ({
      credentialId: crypto.randomUUID(),
      credentialName: unique("count"),
      serviceId,
      scheme: "https",
      host: "count.example.test",
      port: 443,
      headerTemplate: "Authorization: Bearer {secret}",
      secretSealed: "not-opened-here",
      reason: "rotated" as const,
      retiredAt: at(minutesAgo),
    });
    await t.db.retiredSecret.deleteMany({});
    await t.db.retiredSecret.createMany({ data: [...[5, 4, 3, 2, 1].map((m) => row("svc-a", m)), row("svc-b", 50), row("svc-b", 60), row(null, 7), row(null, 8), row(null, 9)] });
    expect(await pruneRetiredSecrets(t.db, { retentionDays: 90, perService: 2 })).toBe(4);
    const left = await t.db.retiredSecret.findMany({ orderBy: [{ serviceId: "asc" }, { retiredAt: "desc" }] });
    expect(left.map((r) => [r.serviceId, Math.round((Date.now() - r.retiredAt.getTime()) / 60_000)])).toEqual([
      ["svc-a", 1],
      ["svc-a", 2],
      ["svc-b", 50],
      ["svc-b", 60],
      [null, 7],
      [null, 8],
    ]);
    await t.db.retiredSecret.deleteMany({});
  });

  it("the worker's role reads them and writes nothing; the dashboard's may only reseal what it retired", async () => {
    const { id } = await newCredential(randomSecret("sk_"));
    await rotateCredential(t.db, admin, keys.workerKey, id, randomSecret("sk_"), limits);
    const [row] = await t.db.retiredSecret.findMany({ where: { credentialId: id } });
    const attempt = async (url: string, sql: string) => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        await c.query(sql);
        return null;
      } catch (error) {
        return (error as { code?: string }).code;
      } finally {
        await c.end();
      }
    };
    expect(await attempt(t.workerUrl, "SELECT count(*) FROM retired_secrets")).toBeNull();
    for (const sql of [
      `INSERT INTO retired_secrets (credential_id, credential_name, scheme, host, port, header_template, secret_sealed, reason) VALUES (gen_random_uuid(), 'x', 'https', 'h', 443, 'X: {secret}', 'x', 'deleted')`,
      `DELETE FROM retired_secrets`,
      `UPDATE retired_secrets SET secret_sealed = 'x'`,
    ]) {
      expect(await attempt(t.workerUrl, sql), sql).toBe("42501");
    }
    for (const sql of [`UPDATE retired_secrets SET retired_at = now() + interval '10 years'`, `UPDATE retired_secrets SET credential_id = gen_random_uuid()`, `UPDATE retired_secrets SET service_id = 'elsewhere'`]) {
      expect(await attempt(t.url, sql), sql).toBe("42501");
    }
    expect(await t.db.retiredSecret.findUnique({ where: { id: row!.id } })).toEqual(row);
  });
});
