import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPrismaClient } from "@/lib/db/client";
import { createLogger } from "@/lib/log";
import { PolicyStore } from "@/proxy-worker/policy/store";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";
import { startOwnPostgres } from "../../support/own-postgres";

async function until(check: () => boolean, timeoutMs: number): Promise<number> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - start;
}

describe("the worker's policy snapshot", () => {
  let t: TestDatabase;
  const log = createLogger("test", "silent");

  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(() => t.drop());

  it("loads at start and picks up committed changes through NOTIFY within a second", async () => {
    const owner = await makeUser(t.db, "admin");
    const agent = await t.db.agent.create({ data: { name: unique("a"), ownerId: owner.user.id } });
    const store = new PolicyStore(createPrismaClient(t.workerUrl, 2), t.workerUrl, log, 60_000);
    await store.start();
    try {
      expect(store.status()).toMatchObject({ stale: false, listening: true, tasks: 0 });
      const task = await t.db.task.create({
        data: { agentId: agent.id, purpose: "p", policyYaml: "rules: []", expiresAt: new Date(Date.now() + 600_000) },
      });
      await until(() => store.current()?.tasks.has(task.id) === true, 1000);

      await t.db.agent.update({ where: { id: agent.id }, data: { status: "suspended" } });
      await until(() => store.current()?.suspendedAgents.has(agent.id) === true, 1000);
      // An active task of a suspended agent is not enforceable.
      expect(store.current()?.tasks.has(task.id)).toBe(false);
    } finally {
      await store.close();
    }
  });

  it("keeps enforcing its last-known-good snapshot when Postgres is away, and says so", async () => {
    const owner = await makeUser(t.db, "admin");
    const agent = await t.db.agent.create({ data: { name: unique("b"), ownerId: owner.user.id } });
    const task = await t.db.task.create({
      data: { agentId: agent.id, purpose: "p", policyYaml: "rules: []", expiresAt: new Date(Date.now() + 600_000) },
    });
    const dbName = new URL(t.url).pathname.slice(1);
    const workerDb = createPrismaClient(t.workerUrl, 2);
    const store = new PolicyStore(workerDb, t.workerUrl, log, 60_000);
    await store.start();
    const admin = new pg.Client({ connectionString: t.adminUrl.replace(`/${dbName}`, "/postgres") });
    await admin.connect();
    try {
      // Let reloads already triggered (the task insert's NOTIFY) finish, so the snapshot is settled.
      await store.reload();
      const before = store.current();
      expect(before?.tasks.has(task.id)).toBe(true);
      // Take the database away from the worker: refuse new connections and cut existing ones.
      await admin.query(`ALTER DATABASE "${dbName}" ALLOW_CONNECTIONS false`);
      await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [dbName]);
      await store.reload();
      expect(store.status().stale).toBe(true);
      expect(store.status().lastError).toBeTruthy();
      // Whatever snapshot was in force when it went away stays in force, reload after reload.
      const held = store.current();
      expect(held?.tasks.has(task.id)).toBe(true);
      await store.reload();
      expect(store.current()).toBe(held);
      expect(store.status().stale).toBe(true);

      await admin.query(`ALTER DATABASE "${dbName}" ALLOW_CONNECTIONS true`);
      await store.reload();
      expect(store.status()).toMatchObject({ stale: false, lastError: null });
      expect(store.status().version).toBeGreaterThan(before!.version);
    } finally {
      await admin.query(`ALTER DATABASE "${dbName}" ALLOW_CONNECTIONS true`).catch(() => undefined);
      await admin.end();
      await store.close();
      await workerDb.$disconnect();
    }
  });

  it("coalesces a burst of notifications into few reloads", async () => {
    const store = new PolicyStore(createPrismaClient(t.workerUrl, 2), t.workerUrl, log, 60_000);
    await store.start();
    try {
      const start = store.status().version;
      await Promise.all(Array.from({ length: 50 }, () => store.reload()));
      const used = store.status().version - start;
      expect(used).toBeGreaterThanOrEqual(1);
      expect(used).toBeLessThanOrEqual(2);
    } finally {
      await store.close();
    }
  });

  it("notices within two seconds that a frozen PostgreSQL stopped answering, and recovers when it answers again", async () => {
    // A server of this test's own: freezing the shared one would stall every other test.
    const own = await startOwnPostgres();
    const workerDb = createPrismaClient(own.url, 2);
    const store = new PolicyStore(workerDb, own.url, log, 60_000);
    try {
      await store.start();
      expect(store.status()).toMatchObject({ stale: false, databaseReachable: true });
      own.freeze();
      try {
        // No error ever arrives from a frozen server: only the probe's timeout tells.
        expect(await until(() => store.status().stale && !store.status().databaseReachable, 5_000)).toBeLessThan(2_000);
        // How long ago the database last confirmed the snapshot grows while it stays away (the
        // request path refuses everything past BULKHEAD_POLICY_STALE_LIMIT_SECONDS).
        const first = store.unconfirmedForMs();
        await new Promise((r) => setTimeout(r, 600));
        expect(store.unconfirmedForMs()).toBeGreaterThanOrEqual(first + 500);
      } finally {
        own.thaw();
      }
      await until(() => !store.status().stale && store.status().databaseReachable, 15_000);
      // Confirmed again by the probe every half second.
      expect(store.unconfirmedForMs()).toBeLessThan(1_500);
    } finally {
      await store.close();
      await workerDb.$disconnect();
      await own.destroy();
    }
  });
});
