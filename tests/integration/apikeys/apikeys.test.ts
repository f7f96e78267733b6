import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAgent, listAgents } from "@/lib/agents/agents";
import { authenticateApiKey, createApiKey, hashApiKey, listApiKeys, revokeApiKey } from "@/lib/apikeys";
import { apiKeyFailureAudit } from "@/lib/apikeys/failure-audit";
import type { Actor } from "@/lib/auth/actor";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";

const CLI: Actor = { kind: "system", label: "cli" };

describe("API keys through the real database", () => {
  let t: TestDatabase;
  let admin: Actor & { kind: "user" };
  let auditor: Actor;
  let approver: Actor;

  beforeAll(async () => {
    t = await createTestDatabase();
    admin = (await makeUser(t.db, "admin")).actor as Actor & { kind: "user" };
    auditor = (await makeUser(t.db, "auditor")).actor;
    approver = (await makeUser(t.db, "approver")).actor;
  });
  afterAll(() => t.drop());

  it("returns the key once as bk_<prefix>_<secret> and stores only its SHA-256", async () => {
    const { apiKey, key } = await createApiKey(t.db, admin, { name: "ci", role: "auditor" });
    expect(key).toMatch(/^bk_[a-z0-9]{8}_[A-Za-z0-9]{43}$/);
    const row = await t.db.apiKey.findUniqueOrThrow({ where: { id: apiKey.id } });
    expect(row.keyHash).toBe(hashApiKey(key));
    expect(row.keyHash).not.toContain(key.split("_")[2]!);
    expect(row.prefix).toBe(key.split("_")[1]);
    const [dump] = await t.db.$queryRaw<Array<{ json: string }>>`SELECT row_to_json(k)::text AS json FROM api_keys k WHERE id = ${apiKey.id}::uuid`;
    expect(dump!.json).not.toContain(key.split("_")[2]!.slice(0, 12));
    expect(apiKey.prefix).toBe(`bk_${row.prefix}_…`);
    const listed = await listApiKeys(t.db, admin);
    expect(JSON.stringify(listed)).not.toContain(key);
    expect(JSON.stringify(listed)).not.toContain(row.keyHash);
    const audits = await t.db.$queryRaw<Array<{ json: string }>>`SELECT row_to_json(a)::text AS json FROM audit_events a`;
    expect(audits.map((a) => a.json).join()).not.toContain(key.split("_")[2]!.slice(0, 12));
    expect(await t.db.auditEvent.count({ where: { type: "api_key.created", actorId: admin.userId } })).toBe(1);
  });

  it("authenticates a live key as an api_key actor with its role", async () => {
    const { apiKey, key } = await createApiKey(t.db, admin, { name: "live", role: "approver" });
    expect(await authenticateApiKey(t.db, key)).toEqual({ kind: "api_key", apiKeyId: apiKey.id, role: "approver", createdById: admin.userId });
  });

  it("refuses malformed, wrong-prefix, wrong-secret, revoked and expired keys", async () => {
    const { apiKey, key } = await createApiKey(t.db, admin, { name: "target", role: "admin" });
    const [, prefix, secret] = key.split("_") as [string, string, string];
    const flip = (s: string) => s.slice(0, -1) + (s.endsWith("a") ? "b" : "a");
    const other = (await createApiKey(t.db, admin, { name: "other", role: "admin" })).key;
    const refused = [
      "",
      "bk_",
      key.slice(0, -1),
      `${key}x`,
      ` ${key}`,
      key.toUpperCase(),
      `bk_${prefix}_${flip(secret)}`, // right prefix, wrong secret
      `bk_${flip(prefix)}_${secret}`, // wrong prefix, right secret
      `bk_zzzzzzzz_${secret}`, // unknown prefix
      `bk_${other.split("_")[1]}_${secret}`, // another key's prefix with this secret
      `bk_${prefix}_${secret.slice(0, 42)}=`,
      hashApiKey(key), // the stored hash is not a key
      `bk_${prefix}_${hashApiKey(key)}`,
      "bk_' OR 1=1 --_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ];
    for (const presented of refused) expect(await authenticateApiKey(t.db, presented), presented).toBeNull();
    expect(await authenticateApiKey(t.db, null)).toBeNull();
    expect(await authenticateApiKey(t.db, key)).not.toBeNull();
    const wrongSecret = await t.db.auditEvent.findFirst({ where: { type: "api_key.auth_failed", actorId: apiKey.id, reason: "wrong secret" } });
    expect(wrongSecret).not.toBeNull();

    await revokeApiKey(t.db, admin, apiKey.id);
    expect(await authenticateApiKey(t.db, key)).toBeNull();
    expect(await t.db.auditEvent.count({ where: { type: "api_key.auth_failed", actorId: apiKey.id, reason: "revoked" } })).toBe(1);

    const expiring = await createApiKey(t.db, admin, { name: "expiring", role: "auditor", expiresInDays: 1 });
    expect(await authenticateApiKey(t.db, expiring.key)).not.toBeNull();
    expect(await authenticateApiKey(t.db, expiring.key, new Date(Date.now() + 25 * 3600_000))).toBeNull();
    await t.db.apiKey.update({ where: { id: expiring.apiKey.id }, data: { expiresAt: new Date(Date.now() - 1000) } });
    expect(await authenticateApiKey(t.db, expiring.key)).toBeNull();
    expect((await listApiKeys(t.db, admin)).find((k) => k.id === expiring.apiKey.id)?.status).toBe("expired");
  });

  it("cannot be made to write an audit event per failure by someone who knows only the public prefix", async () => {
    const { apiKey, key } = await createApiKey(t.db, admin, { name: "flooded", role: "auditor" });
    const prefix = key.split("_")[1]!;
    const events = () => t.db.auditEvent.count({ where: { actorId: apiKey.id, type: { in: ["api_key.auth_failed", "api_key.auth_failures_summarised"] } } });
    const now = Date.now();
    await Promise.all(Array.from({ length: 50 }, (_, i) => authenticateApiKey(t.db, `bk_${prefix}_${"A".repeat(42)}${String.fromCharCode(66 + (i % 20))}`, new Date(now))));
    // One event for the first failure; the other 49 are counted, not written.
    expect(await events()).toBe(1);
    await apiKeyFailureAudit(t.db).flush(now + 61_000);
    expect(await events()).toBe(2);
    const summary = await t.db.auditEvent.findFirstOrThrow({ where: { actorId: apiKey.id, type: "api_key.auth_failures_summarised" } });
    expect(summary.data).toMatchObject({ failures: 49, reason: "wrong secret" });
    // Nothing left to summarise: a second flush writes nothing; the next minute's first failure is written again.
    await apiKeyFailureAudit(t.db).flush(now + 62_000, true);
    expect(await events()).toBe(2);
    await authenticateApiKey(t.db, `bk_${prefix}_${"C".repeat(43)}`, new Date(now + 70_000));
    expect(await events()).toBe(3);
  });

  it("limits what a key can do to its role", async () => {
    const reader = await authenticateApiKey(t.db, (await createApiKey(t.db, admin, { name: "reader", role: "auditor" })).key);
    expect(reader?.role).toBe("auditor");
    expect(Array.isArray(await listAgents(t.db, reader!))).toBe(true);
    await expect(createAgent(t.db, reader!, { name: unique("via-key") })).rejects.toMatchObject({ code: "FORBIDDEN" });
    await expect(createApiKey(t.db, reader!, { name: "escalate", role: "admin" })).rejects.toMatchObject({ code: "FORBIDDEN" });

    const writer = await authenticateApiKey(t.db, (await createApiKey(t.db, admin, { name: "writer", role: "admin" })).key);
    const agent = await createAgent(t.db, writer!, { name: unique("via-admin-key") });
    expect(agent.owner.id).toBe(admin.userId);
    const event = await t.db.auditEvent.findFirstOrThrow({ where: { type: "agent.created", agentId: agent.id } });
    expect(event).toMatchObject({ actorType: "api_key", actorId: writer!.apiKeyId });
  });

  it("never creates a key above its creator's role, and keys cannot manage keys", async () => {
    for (const reader of [auditor, approver]) {
      await expect(createApiKey(t.db, reader, { name: "x", role: "auditor" })).rejects.toMatchObject({ code: "FORBIDDEN" });
      await expect(listApiKeys(t.db, reader)).rejects.toMatchObject({ code: "FORBIDDEN" });
    }
    const created = await createApiKey(t.db, admin, { name: "revokable", role: "auditor" });
    for (const reader of [auditor, approver]) {
      await expect(revokeApiKey(t.db, reader, created.apiKey.id)).rejects.toMatchObject({ code: "FORBIDDEN" });
    }
    const adminKey = await authenticateApiKey(t.db, (await createApiKey(t.db, admin, { name: "admin-key", role: "admin" })).key);
    await expect(createApiKey(t.db, adminKey!, { name: "successor", role: "admin" })).rejects.toMatchObject({ code: "FORBIDDEN" });
    await expect(revokeApiKey(t.db, adminKey!, created.apiKey.id)).rejects.toMatchObject({ code: "FORBIDDEN" });
    expect(await t.db.apiKey.count({ where: { name: "successor" } })).toBe(0);
    expect(await authenticateApiKey(t.db, created.key)).not.toBeNull();
    // The CLI (system) may create keys; they have no creator to be capped by.
    const system = await createApiKey(t.db, CLI, { name: "from-cli", role: "approver" });
    expect((await authenticateApiKey(t.db, system.key))?.createdById).toBeNull();
  });

  it("follows its creator: a demoted creator lowers the key's role, a disabled one stops it", async () => {
    const person = await makeUser(t.db, "admin");
    const { key, apiKey } = await createApiKey(t.db, person.actor, { name: "follows", role: "admin" });
    const listed = async () => (await listApiKeys(t.db, admin)).find((k) => k.id === apiKey.id);
    expect((await authenticateApiKey(t.db, key))?.role).toBe("admin");
    expect(await listed()).toMatchObject({ role: "admin", actsAs: "admin" });
    await t.db.user.update({ where: { id: person.user.id }, data: { role: "auditor" } });
    expect((await authenticateApiKey(t.db, key))?.role).toBe("auditor");
    // The list says the role the key acts with, as authentication does, beside the one it was made with.
    expect(await listed()).toMatchObject({ role: "admin", actsAs: "auditor" });
    await t.db.user.update({ where: { id: person.user.id }, data: { role: "admin", disabledAt: new Date() } });
    expect(await authenticateApiKey(t.db, key)).toBeNull();
    expect(await listed()).toMatchObject({ role: "admin", actsAs: null });
  });

  it("revokes once (audited once), and treats unknown and malformed ids as not found", async () => {
    const { apiKey } = await createApiKey(t.db, admin, { name: "twice", role: "auditor" });
    const first = await revokeApiKey(t.db, admin, apiKey.id);
    const second = await revokeApiKey(t.db, admin, apiKey.id);
    expect(first.status).toBe("revoked");
    expect(second.revokedAt).toEqual(first.revokedAt);
    expect(await t.db.auditEvent.count({ where: { type: "api_key.revoked", data: { path: ["apiKeyId"], equals: apiKey.id } } })).toBe(1);
    await expect(revokeApiKey(t.db, admin, "'; DELETE FROM api_keys; --")).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(revokeApiKey(t.db, admin, "00000000-0000-4000-8000-000000000000")).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("validates input with clear messages", async () => {
    await expect(createApiKey(t.db, admin, { name: "", role: "auditor" })).rejects.toThrow(/Enter a name/);
    await expect(createApiKey(t.db, admin, { name: "x", role: "root" as never })).rejects.toThrow(/Role must be one of: admin, approver, auditor/);
    await expect(createApiKey(t.db, admin, { name: "x", role: "auditor", expiresInDays: 0 })).rejects.toThrow(/between 1 and 730 days/);
    // Number() reads these as 1, 5, 16 and 100 days: refused, never guessed.
    for (const expiresInDays of [true, [5], "0x10", "1e2", "7.0"]) {
      await expect(createApiKey(t.db, admin, { name: "x", role: "auditor", expiresInDays } as never), JSON.stringify(expiresInDays)).rejects.toThrow(/Expiry must be a whole number of days/);
    }
    expect(await createApiKey(t.db, admin, { name: "days-as-text", role: "auditor", expiresInDays: "7" })).toMatchObject({ apiKey: { name: "days-as-text" } });
    await expect(createApiKey(t.db, admin, { name: "x\nfake log line", role: "auditor" })).rejects.toThrow(/must not contain control, invisible or direction-changing characters/);
    // Looks like "ci-deployfdp.exe" on the API keys page and in the audit log: refused, nothing stored.
    await expect(createApiKey(t.db, admin, { name: "ci-deploy\u202Eexe.pdf", role: "auditor" })).rejects.toThrow(/must not contain control, invisible or direction-changing characters/);
    await expect(createApiKey(t.db, admin, { name: "ci\u200Bdeploy", role: "auditor" })).rejects.toThrow(/invisible/);
    expect(await t.db.apiKey.count({ where: { name: { in: ["ci-deploy\u202Eexe.pdf", "ci\u200Bdeploy"] } } })).toBe(0);
  });

  it("updates lastUsedAt at most once a minute", async () => {
    const { apiKey, key } = await createApiKey(t.db, admin, { name: "usage", role: "auditor" });
    const t0 = new Date();
    await authenticateApiKey(t.db, key, t0);
    const first = (await t.db.apiKey.findUniqueOrThrow({ where: { id: apiKey.id } })).lastUsedAt;
    expect(first?.getTime()).toBe(t0.getTime());
    await authenticateApiKey(t.db, key, new Date(t0.getTime() + 30_000));
    expect((await t.db.apiKey.findUniqueOrThrow({ where: { id: apiKey.id } })).lastUsedAt?.getTime()).toBe(t0.getTime());
    const later = new Date(t0.getTime() + 61_000);
    await authenticateApiKey(t.db, key, later);
    expect((await t.db.apiKey.findUniqueOrThrow({ where: { id: apiKey.id } })).lastUsedAt?.getTime()).toBe(later.getTime());
  });
});
