/**
 * A task's scope through the domain functions, the route handlers and the CLI, on the real
 * database: set at creation (given, or exactly what the policy reaches), carried as the token's
 * claim, never changed by anything that edits the task, and checked against the policy.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from "vitest";
import * as scopeRoute from "@/app/api/v1/tasks/[id]/scope/route";
import * as tasksRoute from "@/app/api/v1/tasks/route";
import { createApiKey } from "@/lib/apikeys";
import type { Actor } from "@/lib/auth/actor";
import { generateMasterKey } from "@/lib/crypto/envelope";
import { issueTaskToken, verifyTaskTokenNow } from "@/lib/identity/task-tokens";
import { simulateRequest, updatePolicyInput, updateTaskPolicy } from "@/lib/tasks/policy";
import { checkTaskScope } from "@/lib/tasks/scope";
import { createTask, createTaskInput } from "@/lib/tasks/tasks";
import { runCli } from "../../support/cli";
import { makeUser, unique } from "../../support/factories";
import { callRoute, routeDatabase, type RouteDatabase } from "../../support/routes";

// Requests without a session cookie; API keys and the database are real (tests/support/no-session.ts).
vi.mock("@/lib/auth/current", () => import("../../support/no-session"));

const identity = { issuer: "bulkhead", audience: "bulkhead-proxy" };
const STAGING_READ = "unlisted: deny\nrules:\n  - id: stg\n    service: railway\n    environments: [staging]\n    effects: [read]\n";

describe("task scope", () => {
  let t: RouteDatabase;
  let admin: Actor;
  let ownerId: string;
  let dashboardKey: Buffer;
  const agent = async () => (await t.db.agent.create({ data: { name: unique("agent"), ownerId } })).id;

  beforeAll(async () => {
    t = await routeDatabase({ keys: true });
    const a = await makeUser(t.db, "admin");
    admin = a.actor;
    ownerId = a.user.id;
    dashboardKey = t.keys!.dashboardKey;
    await t.db.setting.create({ data: { key: "inventory.yaml", value: "entries:\n  - environment: staging\n    service: railway\n    resources: [env_staging]\n" } });
  });
  afterAll(() => t.drop());

  it("is stored canonical, audited, and carried as the token's claim", async () => {
    const task = await createTask(t.db, admin, { agentId: await agent(), purpose: "scoped", policyYaml: STAGING_READ, scope: "GitHub:*:read, railway:staging:write" });
    expect(task.scope).toBe("github:*:read railway:staging:write");
    const event = await t.db.auditEvent.findFirstOrThrow({ where: { type: "task.created", taskId: task.id } });
    expect(event.data).toMatchObject({ scope: "github:*:read railway:staging:write", scopeDerivedFromPolicy: false });
    const issued = await issueTaskToken(t.db, admin, dashboardKey, identity, task.id);
    const verified = await verifyTaskTokenNow(t.db, identity, issued.token);
    expect(verified.claims.scope).toBe("github:*:read railway:staging:write");
    expect((await t.db.auditEvent.findFirstOrThrow({ where: { type: "token.minted", taskId: task.id } })).data).toMatchObject({ scope: "github:*:read railway:staging:write" });
  });

  it("without one, is exactly what the policy reaches; none for a task without a policy", async () => {
    const derived = await createTask(t.db, admin, { agentId: await agent(), purpose: "derived", policyYaml: STAGING_READ });
    expect(derived.scope).toBe("railway:staging:read");
    expect((await t.db.auditEvent.findFirstOrThrow({ where: { type: "task.created", taskId: derived.id } })).data).toMatchObject({ scopeDerivedFromPolicy: true });
    expect((await createTask(t.db, admin, { agentId: await agent(), purpose: "nothing" })).scope).toBe("");
    expect((await createTask(t.db, admin, { agentId: await agent(), purpose: "explicit none", policyYaml: STAGING_READ, scope: "none" })).scope).toBe("");
    expect((await createTask(t.db, admin, { agentId: await agent(), purpose: "blank", policyYaml: STAGING_READ, scope: "   " })).scope).toBe("railway:staging:read");
    // An explicitly empty list is not "no scope given": it allows nothing.
    expect((await createTask(t.db, admin, { agentId: await agent(), purpose: "empty list", policyYaml: STAGING_READ, scope: [] })).scope).toBe("");
    const holds = await createTask(t.db, admin, { agentId: await agent(), purpose: "holds", policyYaml: "unlisted: hold\nrules: []\n" });
    expect(holds.scope).toBe("*:*:irreversible");
    expect((await checkTaskScope(t.db, admin, holds.id)).warnings.map((w) => w.message)).toEqual([expect.stringMatching(/the scope is unrestricted.*layer 1 stops nothing/)]);
  });

  it("refuses a bad scope with sentences on the scope field, creating nothing", async () => {
    const before = await t.db.task.count();
    const error = await createTask(t.db, admin, { agentId: await agent(), purpose: "bad", scope: "railway:staging:all github" }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "INVALID_INPUT", details: { fieldErrors: { scope: [expect.stringMatching(/effect must be one of/), expect.stringMatching(/"github" is not service:environment:effect/)] } } });
    await expect(createTask(t.db, admin, { agentId: await agent(), purpose: "star", scope: "*" })).rejects.toMatchObject({ code: "INVALID_INPUT" });
    expect(await t.db.task.count()).toBe(before);
  });

  it("nothing that edits a task changes its scope: the policy editor and its inputs have no scope", async () => {
    const task = await createTask(t.db, admin, { agentId: await agent(), purpose: "fixed", policyYaml: STAGING_READ, scope: "railway:staging:read" });
    // A client that sends a scope along with the policy: the field is not part of the input.
    const parsed = updatePolicyInput.parse({ id: task.id, policyYaml: "rules: []\n", scope: "*:*:irreversible" });
    expect(parsed).not.toHaveProperty("scope");
    await updateTaskPolicy(t.db, admin, task.id, "unlisted: deny\nrules:\n  - service: '*'\n    effects: [read, write, destructive, irreversible]\n    waive_approval: true\n");
    expect((await t.db.task.findUniqueOrThrow({ where: { id: task.id } })).scope).toBe("railway:staging:read");
    const token = (await issueTaskToken(t.db, admin, dashboardKey, identity, task.id)).token;
    expect((await verifyTaskTokenNow(t.db, identity, token)).claims.scope).toBe("railway:staging:read");
  });

  it("reports policy rules outside the scope and names it checks first in the simulator", async () => {
    const task = await createTask(t.db, admin, {
      agentId: await agent(),
      purpose: "check",
      scope: "railway:staging:read",
      policyYaml: STAGING_READ + "  - id: prod-delete\n    service: railway\n    environments: [production]\n    effects: [irreversible]\n    waive_approval: true\n",
    });
    const report = await checkTaskScope(t.db, admin, task.id);
    expect(report).toMatchObject({ scope: "railway:staging:read", policyErrors: null });
    expect(report.warnings.map((w) => w.ruleId)).toEqual(["prod-delete"]);
    const candidate = await checkTaskScope(t.db, admin, task.id, { policyYaml: STAGING_READ });
    expect(candidate.warnings).toEqual([]);
    // A service the registry does not know is refused at creation (the scope never changes, so
    // the entry would match nothing for the task's life); an environment only warns.
    const before = await t.db.task.count();
    const refused = await createTask(t.db, admin, { agentId: await agent(), purpose: "typo", scope: "railwya:staging:read railway:stagign:read" }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: "INVALID_INPUT", details: { fieldErrors: { scope: [expect.stringMatching(/names the service "railwya", which does not exist \(services: github, railway, unknown\)/)] } } });
    expect(await t.db.task.count()).toBe(before);
    const typo = await checkTaskScope(t.db, admin, (await createTask(t.db, admin, { agentId: await agent(), purpose: "typo", scope: "railway:stagign:read unknown:*:read *:staging:read" })).id);
    expect(typo.warnings.map((w) => w.message)).toEqual([expect.stringMatching(/railway:stagign:read names an environment the inventory does not know \(known: production, staging\)/)]);

    const sim = await simulateRequest(t.db, admin, {
      taskId: task.id,
      policyYaml: "unlisted: deny\nrules:\n  - service: '*'\n    effects: [irreversible]\n    waive_approval: true\n",
      method: "POST",
      url: "https://backboard.railway.com/graphql/v2",
      body: JSON.stringify({ query: 'mutation { volumeDelete(volumeId: "vol_prod") }' }),
    });
    expect(sim).toMatchObject({ ok: true, decision: "deny", outsideScope: true });
    expect(sim.ok && sim.reason).toMatch(/^token_scope: irreversible `volumeDelete`/);
  });

  it("a task with several mistakes is refused with every one of them at once, and nothing is created", async () => {
    const before = await t.db.task.count();
    const refused = await createTask(t.db, admin, { agentId: await agent(), purpose: "three mistakes", ttl: "9h", scope: "railway:staging:sometimes", policyYaml: "rules:\n  - servce: railway\n" }).catch((e: unknown) => e);
    expect(refused).toMatchObject({
      code: "INVALID_INPUT",
      details: { fieldErrors: { ttl: [expect.stringMatching(/between 1m and/)], policyYaml: expect.arrayContaining([expect.stringMatching(/servce/)]), scope: [expect.stringMatching(/sometimes/)] } },
    });
    expect((refused as Error).message).toBe("Several fields are not valid; each says why.");
    // A scope naming a service that does not exist is reported beside a bad time to live too.
    const two = await createTask(t.db, admin, { agentId: await agent(), purpose: "two mistakes", ttl: "0s", scope: "railwya:staging:read" }).catch((e: unknown) => e);
    expect(two).toMatchObject({ code: "INVALID_INPUT", details: { fieldErrors: { ttl: [expect.any(String)], scope: [expect.stringMatching(/"railwya", which does not exist/)] } } });
    // One mistake keeps its own sentence as the message.
    const one = await createTask(t.db, admin, { agentId: await agent(), purpose: "one mistake", ttl: "9h" }).catch((e: unknown) => e);
    expect(one).toMatchObject({ code: "INVALID_INPUT", details: { fieldErrors: { ttl: [expect.any(String)] } } });
    expect((one as Error).message).toMatch(/^The time to live must be between 1m and/);
    expect(await t.db.task.count()).toBe(before);
  });

  it("the API takes a scope on POST /api/v1/tasks and reports it on GET /api/v1/tasks/{id}/scope", async () => {
    const key = (await createApiKey(t.db, admin, { name: "admin", role: "admin" })).key;
    const agentId = await agent();
    const bad = await callRoute(tasksRoute.POST, "/api/v1/tasks", { method: "POST", key, body: { agentId, purpose: "api scoped", scope: "railway" } });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(await bad.json())).toMatch(/not service:environment:effect/);
    const created = await callRoute(tasksRoute.POST, "/api/v1/tasks", { method: "POST", key, body: { agentId, purpose: "api scoped", scope: ["railway:staging:read"], policyYaml: STAGING_READ } });
    expect(created.status).toBe(201);
    const { task } = (await created.json()) as { task: { id: string; scope: string } };
    expect(task.scope).toBe("railway:staging:read");
    const report = await callRoute(scopeRoute.GET, `/api/v1/tasks/${task.id}/scope`, { key, params: { id: task.id } });
    expect(report.status).toBe(200);
    expect(await report.json()).toMatchObject({ taskId: task.id, scope: "railway:staging:read", scopeText: "railway:staging:read", warnings: [] });
    expect(createTaskInput.shape.scope).toBeDefined();
  });

  describe("bulkhead task create --scope / policy check --task", () => {
    const master = generateMasterKey();
    const cli = async (argv: string[]) => {
      const previous = process.env.BULKHEAD_MASTER_KEY;
      process.env.BULKHEAD_MASTER_KEY = master;
      try {
        return await runCli(argv, { database: t });
      } finally {
        if (previous === undefined) delete process.env.BULKHEAD_MASTER_KEY;
        else process.env.BULKHEAD_MASTER_KEY = previous;
      }
    };

    it("creates with a scope, refuses a bad or empty one, and checks a policy file against it", async () => {
      const agentId = await agent();
      const created = await cli(["task", "create", "--agent", agentId, "--purpose", "cli scoped", "--scope", "railway:staging:read", "--json"]);
      expect(created.code, created.stderr.join()).toBe(0);
      const task = JSON.parse(created.stdout[0]!) as { id: string; scope: string };
      expect(task.scope).toBe("railway:staging:read");
      const bad = await cli(["task", "create", "--agent", agentId, "--purpose", "cli bad", "--scope", "railway:staging"]);
      expect(bad.code).toBe(1);
      expect(bad.stderr.join("\n")).toMatch(/not service:environment:effect/);
      const typo = await cli(["task", "create", "--agent", agentId, "--purpose", "cli typo", "--scope", "githib:*:read"]);
      expect(typo.code).toBe(1);
      expect(typo.stderr.join("\n")).toMatch(/names the service "githib", which does not exist/);
      expect((await cli(["task", "create", "--agent", agentId, "--purpose", "cli empty", "--scope", ""])).code).toBe(2);

      const { writeFile, mkdtemp, rm } = await import("node:fs/promises");
      const dir = await mkdtemp(`${(await import("node:os")).tmpdir()}/bh-scope-`);
      onTestFinished(() => rm(dir, { recursive: true, force: true }));
      await writeFile(`${dir}/wide.yaml`, "unlisted: deny\nrules:\n  - id: wide\n    service: railway\n    effects: [write]\n");
      const checked = await cli(["policy", "check", "--task", task.id, `${dir}/wide.yaml`]);
      expect(checked.code).toBe(0);
      expect(checked.stdout[0]).toBe(`task ${task.id}: scope railway:staging:read`);
      expect(checked.stderr.join("\n")).toMatch(/warning: rule wide allows write on railway\/\* \(every environment\), outside the task's scope/);
      const stored = await cli(["policy", "check", "--task", task.id, "--json"]);
      expect(JSON.parse(stored.stdout[0]!)).toMatchObject({ ok: true, scope: "railway:staging:read", warnings: [] });
      await writeFile(`${dir}/broken.yaml`, "rules:\n  - service: railway\n    effects: [explode]\n");
      expect((await cli(["policy", "check", "--task", task.id, `${dir}/broken.yaml`])).code).toBe(1);
    });

    it("fails a stored policy that names a service deleted since, as the proxy refuses it", async () => {
      const name = unique("gone-api").toLowerCase().replace(/[^a-z0-9-]/g, "-");
      await t.db.service.create({ data: { name, descriptorYaml: `id: ${name}\nhosts: [${name}.example.com]\nprotocol: rest\n` } });
      const agentId = await agent();
      const { writeFile, mkdtemp, rm } = await import("node:fs/promises");
      const dir = await mkdtemp(`${(await import("node:os")).tmpdir()}/bh-scope-`);
      onTestFinished(() => rm(dir, { recursive: true, force: true }));
      await writeFile(`${dir}/policy.yaml`, `unlisted: deny\nrules:\n  - id: reads\n    service: ${name}\n    effects: [read]\n`);
      const created = await cli(["task", "create", "--agent", agentId, "--purpose", "uses a custom service", "--scope", `${name}:*:read`, "--policy", `${dir}/policy.yaml`, "--json"]);
      expect(created.code, created.stderr.join()).toBe(0);
      const task = JSON.parse(created.stdout[0]!) as { id: string };
      expect((await cli(["policy", "check", "--task", task.id])).code).toBe(0);
      await t.db.service.delete({ where: { name } });
      const stored = await cli(["policy", "check", "--task", task.id, "--json"]);
      expect(stored.code).toBe(1);
      expect(JSON.parse(stored.stdout[0]!)).toMatchObject({ ok: false, policyErrors: [expect.stringMatching(new RegExp(`service "${name}" does not exist`))] });
      const text = await cli(["policy", "check", "--task", task.id]);
      expect(text.code).toBe(1);
      expect(text.stderr.join("\n")).toMatch(new RegExp(`policy v1: line 4: rules\\[0\\]\\.service: .*"${name}" does not exist`));
    });
  });
});
