import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPrismaClient, type Db } from "@/lib/db/client";
import { TokenError } from "@/lib/identity/errors";
import { issueTaskToken, revokeTaskToken } from "@/lib/identity/task-tokens";
import { createLogger } from "@/lib/log";
import { setAgentSuspended } from "@/lib/agents/agents";
import { updateTaskPolicy } from "@/lib/tasks/policy";
import { createTask, endTask } from "@/lib/tasks/tasks";
import { startEnforcementCore, type EnforcementCore } from "@/proxy-worker/core";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";
import { establishTestKeys, type TestKeys } from "../../support/keys";
import { identity } from "../../support/proxy-harness";

async function until(check: () => Promise<boolean> | boolean, timeoutMs = 5_000): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function refusal(core: EnforcementCore, token: string): Promise<string | null> {
  try {
    await core.tokens.authenticate(token);
    return null;
  } catch (error) {
    if (error instanceof TokenError) return error.reason;
    throw error;
  }
}

/**
 * A change to one task, agent or token reaches the worker's verifier by reading that row, not
 * by re-reading every task, service and credential. The worker's database client records every
 * model operation it runs; what a change made it query is asserted. A full reload (what every
 * change cost before) reads services, credentials' neighbours and every task, and the control
 * test shows the log sees that.
 */
describe("incremental policy reloads", () => {
  let t: TestDatabase;
  let keys: TestKeys;
  let core: EnforcementCore;
  let owner: Awaited<ReturnType<typeof makeUser>>;
  const queries: string[] = [];
  const log = createLogger("test", "silent");

  const newTask = async (policyYaml = "rules:\n  - service: github\n    effects: [read]\n") => {
    const agent = await t.db.agent.create({ data: { name: unique("agent"), ownerId: owner.user.id } });
    const task = await createTask(t.db, owner.actor, { agentId: agent.id, purpose: "incremental reload", policyYaml, ttl: "30m" });
    const issued = await issueTaskToken(t.db, owner.actor, keys.dashboardKey, identity, task.id);
    await until(() => core.policy.current()?.issuedJtis.has(issued.jti) === true);
    return { agent, task, ...issued };
  };
  /** What the worker queried while `action` ran and until `done` held. */
  const queriedDuring = async (action: () => Promise<unknown>, done: () => Promise<boolean> | boolean) => {
    await core.policy.reload(); // settle anything still in flight
    queries.length = 0;
    const before = core.policy.status().loads;
    await action();
    await until(done);
    const after = core.policy.status().loads;
    // Queries first: they are what the assertions look at before the load counters.
    return { queries: [...queries], loads: () => ({ full: after.full - before.full, incremental: after.incremental - before.incremental }) };
  };
  const FULL_LOAD_ONLY = ["Service.findMany", "Sandbox.findMany", "Setting.findUnique", "CertificateAuthority.findFirst", "SigningKey.findMany"];

  beforeAll(async () => {
    t = await createTestDatabase();
    keys = await establishTestKeys(t.db);
    owner = await makeUser(t.db, "admin");
    const base = createPrismaClient(t.workerUrl, 4);
    const db = base.$extends({
      query: {
        $allModels: {
          async $allOperations({ model, operation, args, query }) {
            queries.push(`${model}.${operation}`);
            return query(args);
          },
        },
      },
    }) as unknown as Db;
    core = await startEnforcementCore({ db, databaseUrl: t.workerUrl, log, identity, reconcileIntervalMs: 600_000 });
  });
  afterAll(async () => {
    await core?.close();
    await t.drop();
  });

  it("control: a full reload reads every task, service and key (what the log would show for one)", async () => {
    queries.length = 0;
    await core.policy.reload();
    for (const q of ["Task.findMany", ...FULL_LOAD_ONLY, "IssuedToken.findMany"]) expect(queries).toContain(q);
  });

  it("a revoked token is refused after reading that one token, with no full snapshot load", async () => {
    const { token, jti } = await newTask();
    expect(await refusal(core, token)).toBeNull();
    const seen = await queriedDuring(
      () => revokeTaskToken(t.db, owner.actor, jti),
      async () => (await refusal(core, token)) === "jti_revoked",
    );
    expect(seen.queries).toEqual(expect.arrayContaining(["IssuedToken.findMany"]));
    for (const q of ["Task.findMany", "Agent.findMany", ...FULL_LOAD_ONLY]) expect(seen.queries).not.toContain(q);
    expect(seen.queries.some((q) => q.startsWith("Credential."))).toBe(false);
    expect(seen.loads().full).toBe(0);
    expect(seen.loads().incremental).toBeGreaterThanOrEqual(1);
  });

  it("a new token is known to the verifier without a full load (no look-up on its first use)", async () => {
    const { task } = await newTask();
    let jti = "";
    const seen = await queriedDuring(
      async () => (jti = (await issueTaskToken(t.db, owner.actor, keys.dashboardKey, identity, task.id)).jti),
      () => core.policy.current()?.issuedJtis.has(jti) === true,
    );
    for (const q of ["Task.findMany", ...FULL_LOAD_ONLY]) expect(seen.queries).not.toContain(q);
    expect(seen.loads().full).toBe(0);
  });

  it("an ended task and a suspended agent are refused without a full load", async () => {
    const a = await newTask();
    const ended = await queriedDuring(
      () => endTask(t.db, owner.actor, a.task.id),
      async () => (await refusal(core, a.token)) === "task_revoked",
    );
    for (const q of FULL_LOAD_ONLY) expect(ended.queries).not.toContain(q);
    expect(ended.loads().full).toBe(0);

    const b = await newTask();
    const suspended = await queriedDuring(
      () => setAgentSuspended(t.db, owner.actor, b.agent.id, true),
      async () => (await refusal(core, b.token)) !== null,
    );
    expect(await refusal(core, b.token)).toMatch(/agent_suspended|task_revoked/);
    for (const q of FULL_LOAD_ONLY) expect(suspended.queries).not.toContain(q);
    expect(suspended.loads().full).toBe(0);

    // Reactivated: the agent is no longer suspended (its tasks stay revoked: suspension revoked
    // them), again without a full load.
    const back = await queriedDuring(
      () => setAgentSuspended(t.db, owner.actor, b.agent.id, false),
      () => core.policy.current()?.suspendedAgents.has(b.agent.id) === false,
    );
    expect(await refusal(core, b.token)).toBe("task_revoked");
    for (const q of FULL_LOAD_ONLY) expect(back.queries).not.toContain(q);
    expect(back.loads().full).toBe(0);
  });

  it("a policy change reaches the snapshot by reading that task only", async () => {
    const { task } = await newTask();
    const before = core.policy.current()!.tasks.get(task.id)!.policyVersion;
    const seen = await queriedDuring(
      () => updateTaskPolicy(t.db, owner.actor, task.id, "rules:\n  - service: github\n    effects: [read, write]\n"),
      () => (core.policy.current()?.tasks.get(task.id)?.policyVersion ?? 0) > before,
    );
    expect(core.policy.current()!.tasks.get(task.id)!.policyYaml).toContain("write");
    for (const q of FULL_LOAD_ONLY) expect(seen.queries).not.toContain(q);
    expect(seen.loads().full).toBe(0);
  });

  it("an unknown, malformed or oversized payload falls back to a full reload", async () => {
    for (const payload of ["something_else", "tasks:not-a-uuid", `issued_tokens:${"x".repeat(7000)}`]) {
      const before = core.policy.status().loads.full;
      await t.db.$executeRaw`SELECT pg_notify('bulkhead_policy', ${payload})`;
      await until(() => core.policy.status().loads.full > before);
    }
  });

  it("a notification naming a row that does not exist changes nothing it should not", async () => {
    const { token } = await newTask();
    const before = core.policy.status().loads;
    await t.db.$executeRaw`SELECT pg_notify('bulkhead_policy', ${`tasks:${crypto.randomUUID()}`})`;
    await t.db.$executeRaw`SELECT pg_notify('bulkhead_policy', ${"issued_tokens:made-up-jti"})`;
    await until(() => core.policy.status().loads.incremental > before.incremental);
    expect(core.policy.status().loads.full).toBe(before.full);
    expect(await refusal(core, token)).toBeNull();
  });
});
