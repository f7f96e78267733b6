import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as agentsRoute from "@/app/api/v1/agents/route";
import * as approvalsRoute from "@/app/api/v1/approvals/route";
import * as sandboxesRoute from "@/app/api/v1/sandboxes/route";
import * as tasksRoute from "@/app/api/v1/tasks/route";
import { listAgents, listAgentsPage } from "@/lib/agents/view";
import { createApiKey } from "@/lib/apikeys";
import { timeCursor } from "@/lib/db/list-page";
import { listSandboxes } from "@/lib/sandboxes/view";
import { listTasks, listTasksPage } from "@/lib/tasks/view";
import { runCli } from "../../support/cli";
import { makeUser, unique } from "../../support/factories";
import type { RouteHandler } from "../../support/no-session";
import { callRoute, routeDatabase, type RouteDatabase } from "../../support/routes";

// Requests without a session cookie; API keys and the database are real (tests/support/no-session.ts).
vi.mock("@/lib/auth/current", () => import("../../support/no-session"));

type Route = RouteHandler<Record<string, string>>;
type Actor = Awaited<ReturnType<typeof makeUser>>["actor"];

/**
 * The task, agent and sandbox lists stopped at their first 500 rows without a word: older tasks
 * could not be found on the dashboard, through the API or with `bulkhead task list`. They are read
 * a page at a time now; these tests page through more than 500 rows, with many sharing one
 * creation time, and while rows are added between pages.
 */
describe("lists are read a page at a time and lose no row", () => {
  let t: RouteDatabase;
  let key: string;
  let actor: Actor;
  let agentA: string;
  let agentB: string;
  /** Every task id, in the order the list must give them (newest first; ties by id, descending). */
  let expectedTasks: string[];
  const TASKS = 523;
  const get = async (handler: Route, path: string) => {
    const res = await callRoute(handler, path, { key });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const ids = (rows: unknown) => (rows as Array<{ id: string }>).map((r) => r.id);

  beforeAll(async () => {
    t = await routeDatabase();
    const admin = await makeUser(t.db, "admin");
    actor = admin.actor;
    key = (await createApiKey(t.db, admin.actor, { name: "lists", role: "auditor" })).key;
    agentA = (await t.db.agent.create({ data: { name: unique("pa"), ownerId: admin.user.id } })).id;
    agentB = (await t.db.agent.create({ data: { name: unique("pb"), ownerId: admin.user.id } })).id;
    // Most tasks in one statement (one creation time, so their order rests on the id alone), the
    // rest a millisecond apart, alternating between two agents.
    await t.adminDb().$executeRawUnsafe(
      `INSERT INTO tasks (agent_id, purpose, policy_yaml, expires_at, created_at)
       SELECT CASE WHEN g % 2 = 0 THEN $1::uuid ELSE $2::uuid END, 'task ' || g, 'rules: []' || chr(10),
              now() + interval '1 hour', CASE WHEN g <= 400 THEN timestamptz '2026-11-01 00:00:00+00' ELSE timestamptz '2026-11-01 00:00:00+00' + g * interval '1 millisecond' END
       FROM generate_series(1, $3::int) g`,
      agentA,
      agentB,
      TASKS,
    );
    expectedTasks = (await t.adminDb().$queryRawUnsafe<Array<{ id: string }>>("SELECT id::text FROM tasks ORDER BY created_at DESC, id DESC")).map((r) => r.id);
  });
  afterAll(() => t.drop());

  it("GET /api/v1/tasks: 500 a page by default, then the rest after nextCursor, newest first, none twice", async () => {
    const first = await get(tasksRoute.GET, "/api/v1/tasks");
    expect(first.status).toBe(200);
    expect(ids(first.body.tasks)).toHaveLength(500);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const second = await get(tasksRoute.GET, `/api/v1/tasks?cursor=${encodeURIComponent(first.body.nextCursor as string)}`);
    expect(second.status).toBe(200);
    expect(second.body.nextCursor).toBeNull();
    expect([...ids(first.body.tasks), ...ids(second.body.tasks)]).toEqual(expectedTasks);
  });

  it("small pages through ties of creation time give every task once, in order; so does the agent filter", async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await listTasksPage(t.db, actor, { cursor, limit: 37 });
      expect(page.items.length).toBeLessThanOrEqual(37);
      seen.push(...page.items.map((x) => x.id));
      cursor = page.nextCursor ?? undefined;
      pages++;
    } while (cursor);
    expect(pages).toBe(Math.ceil(TASKS / 37));
    expect(seen).toEqual(expectedTasks);

    const ofA = await t.adminDb().$queryRawUnsafe<Array<{ id: string }>>("SELECT id::text FROM tasks WHERE agent_id = $1::uuid ORDER BY created_at DESC, id DESC", agentA);
    const pageA: string[] = [];
    cursor = undefined;
    do {
      const res = await get(tasksRoute.GET, `/api/v1/tasks?agent=${agentA}&limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      expect(res.status).toBe(200);
      pageA.push(...ids(res.body.tasks));
      cursor = (res.body.nextCursor as string | null) ?? undefined;
    } while (cursor);
    expect(pageA).toEqual(ofA.map((r) => r.id));
  });

  it("a task created between two pages neither shifts the next page nor appears twice", async () => {
    const first = await listTasksPage(t.db, actor, { limit: 10 });
    const added = await t.db.task.create({ data: { agentId: agentB, purpose: "late", policyYaml: "rules: []\n", expiresAt: new Date(Date.now() + 3600_000) } });
    try {
      const second = await listTasksPage(t.db, actor, { cursor: first.nextCursor!, limit: 10 });
      expect([...first.items, ...second.items].map((x) => x.id)).toEqual(expectedTasks.slice(0, 20));
      // The new task is the newest: first on a list read afresh.
      expect((await listTasksPage(t.db, actor, { limit: 1 })).items[0]!.id).toBe(added.id);
    } finally {
      await t.adminDb().$executeRawUnsafe("DELETE FROM tasks WHERE id = $1::uuid", added.id);
    }
  });

  it("bulkhead task list prints every task, not the first 500", async () => {
    const every = await listTasks(t.db, actor);
    expect(every.map((x) => x.id)).toEqual(expectedTasks);
    const run = await runCli(["task", "list", "--json"], { database: t });
    expect(run.code).toBe(0);
    expect((JSON.parse(run.stdout.join("\n")) as Array<{ id: string }>).map((x) => x.id)).toEqual(expectedTasks);
  });

  it("status narrows the list as it is shown: an active task past its expiry is expired, not active", async () => {
    const admin = await makeUser(t.db, "admin");
    const agent = (await t.db.agent.create({ data: { name: unique("st"), ownerId: admin.user.id } })).id;
    const hour = 3600_000;
    const make = (purpose: string, status: "active" | "ended" | "expired" | "revoked", expiresIn: number) =>
      t.db.task.create({ data: { agentId: agent, purpose, policyYaml: "rules: []\n", status, expiresAt: new Date(Date.now() + expiresIn) } }).then((x) => x.id);
    const live = await make("live", "active", hour);
    const lapsed = await make("lapsed", "active", -hour);
    const expired = await make("expired", "expired", -hour);
    const ended = await make("ended", "ended", hour);
    const revoked = await make("revoked", "revoked", hour);
    const listed = async (status: string) => {
      const res = await get(tasksRoute.GET, `/api/v1/tasks?agent=${agent}&status=${status}`);
      expect(res.status).toBe(200);
      return new Set(ids(res.body.tasks));
    };
    expect(await listed("active")).toEqual(new Set([live]));
    expect(await listed("expired")).toEqual(new Set([lapsed, expired]));
    expect(await listed("ended")).toEqual(new Set([ended]));
    expect(await listed("revoked")).toEqual(new Set([revoked]));
    expect(await listed("")).toEqual(new Set([live, lapsed, expired, ended, revoked]));
    for (const bad of ["ACTIVE", "all", "pending", "active,ended"]) {
      const res = await get(tasksRoute.GET, `/api/v1/tasks?status=${encodeURIComponent(bad)}`);
      expect(res.status, bad).toBe(400);
      expect(JSON.stringify(res.body)).toMatch(/status must be active, expired, ended or revoked/);
    }
    const run = await runCli(["task", "list", "--agent", agent, "--status", "expired", "--json"], { database: t });
    expect(run.code).toBe(0);
    expect(new Set((JSON.parse(run.stdout.join("\n")) as Array<{ id: string; status: string }>).map((x) => `${x.id} ${x.status}`))).toEqual(new Set([`${lapsed} expired`, `${expired} expired`]));
    const wrong = await runCli(["task", "list", "--status", "done"], { database: t });
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr.join("\n")).toMatch(/status must be active, expired, ended or revoked/);
  });

  it.each([
    ["not base64", "not a cursor!"],
    ["not JSON", Buffer.from("{{").toString("base64url")],
    ["another list's", Buffer.from(JSON.stringify(["agents", "x"])).toString("base64url")],
    ["a malformed id", Buffer.from(JSON.stringify(["tasks", "1", "' OR 1=1 --"])).toString("base64url")],
    ["a malformed time", Buffer.from(JSON.stringify(["tasks", "1e3", "00000000-0000-4000-8000-000000000000"])).toString("base64url")],
    ["too long", "A".repeat(5000)],
  ])("a cursor that is not a position (%s) is a 400 naming cursor, never the first page", async (_what, cursor) => {
    const res = await get(tasksRoute.GET, `/api/v1/tasks?cursor=${encodeURIComponent(cursor)}`);
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toMatch(/cursor is not a position in the tasks list/);
  });

  it.each(["0", "501", "abc", "1e2", "-5", "7.5"])("limit=%s is a 400 that says what a limit is", async (limit) => {
    const res = await get(tasksRoute.GET, `/api/v1/tasks?limit=${limit}`);
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toMatch(/limit must be/);
  });

  it("agents: pages by name, with the search kept across pages; the full list for pickers has them all", async () => {
    const admin = await makeUser(t.db, "admin");
    const prefix = unique("fleet");
    const names = Array.from({ length: 23 }, (_, i) => `${prefix}-${String(i).padStart(2, "0")}`);
    for (const name of names) await t.db.agent.create({ data: { name, ownerId: admin.user.id } });
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const res = await get(agentsRoute.GET, `/api/v1/agents?q=${prefix}&limit=5${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      expect(res.status).toBe(200);
      seen.push(...(res.body.agents as Array<{ name: string }>).map((a) => a.name));
      cursor = (res.body.nextCursor as string | null) ?? undefined;
    } while (cursor);
    expect(seen).toEqual(names);
    expect((await listAgents(t.db, actor, { query: prefix })).map((a) => a.name)).toEqual(names);
    const page = await listAgentsPage(t.db, actor, { query: prefix, limit: 23 });
    expect(page.nextCursor).toBeNull();
    // The CLI narrows by status as the API does, and refuses a status that is not one.
    const suspendedName = names[3]!;
    await t.db.agent.update({ where: { name: suspendedName }, data: { status: "suspended", suspendedAt: new Date() } });
    const suspended = await runCli(["agent", "list", "--query", prefix, "--status", "suspended", "--json"], { database: t });
    expect(suspended.code).toBe(0);
    expect((JSON.parse(suspended.stdout.join("\n")) as Array<{ name: string }>).map((a) => a.name)).toEqual([suspendedName]);
    const bogus = await runCli(["agent", "list", "--status", "bogus"], { database: t });
    expect(bogus.code).toBe(1);
    expect(bogus.stderr.join("\n")).toMatch(/status must be active or suspended/);
    const wrong = await get(agentsRoute.GET, `/api/v1/agents?cursor=${encodeURIComponent(timeCursor("tasks", { atMs: "1", id: agentA }))}`);
    expect(wrong.status).toBe(400);
    expect(JSON.stringify(wrong.body)).toMatch(/cursor is not a position in the agents list/);
  });

  it("decided approvals: newest first a page at a time past the old cap of 200; pending ones stay one page", async () => {
    const [task] = await t.adminDb().$queryRawUnsafe<Array<{ id: string; agent_id: string }>>("SELECT id::text, agent_id::text FROM tasks WHERE agent_id = $1::uuid LIMIT 1", agentA);
    await t.adminDb().$executeRawUnsafe(
      `INSERT INTO approvals (task_id, agent_id, request_digest, method, url, actions, reason, status, created_at, expires_at)
       SELECT $1::uuid, $2::uuid, 'd' || g, 'DELETE', 'https://api.example.test/v/' || g, '[]'::jsonb, 'held', CASE WHEN g % 5 = 0 THEN 'denied' ELSE 'approved' END::"ApprovalStatus",
              timestamptz '2026-11-03 00:00:00+00' + (g / 7) * interval '1 second', now() + interval '1 hour'
       FROM generate_series(1, 263) g`,
      task!.id,
      task!.agent_id,
    );
    for (const state of ["approved", ""]) {
      const where = state ? `WHERE status = '${state}'` : "";
      const expected = (await t.adminDb().$queryRawUnsafe<Array<{ id: string }>>(`SELECT id::text FROM approvals ${where} ORDER BY created_at DESC, id DESC`)).map((r) => r.id);
      expect(expected.length).toBeGreaterThan(200);
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const res = await get(approvalsRoute.GET, `/api/v1/approvals?limit=200${state ? `&state=${state}` : ""}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
        expect(res.status).toBe(200);
        seen.push(...ids(res.body.approvals));
        cursor = (res.body.nextCursor as string | null) ?? undefined;
      } while (cursor);
      expect(seen).toEqual(expected);
    }
    const pending = await get(approvalsRoute.GET, "/api/v1/approvals?state=pending");
    expect(pending.status).toBe(200);
    expect(pending.body.nextCursor).toBeNull();
    const mixed = await get(approvalsRoute.GET, `/api/v1/approvals?state=pending&cursor=${encodeURIComponent(timeCursor("approvals", { atMs: "1", id: agentA }))}`);
    expect(mixed.status).toBe(400);
    const foreign = await get(approvalsRoute.GET, `/api/v1/approvals?cursor=${encodeURIComponent(timeCursor("tasks", { atMs: "1", id: agentA }))}`);
    expect(foreign.status).toBe(400);
    expect(JSON.stringify(foreign.body)).toMatch(/cursor is not a position in the approvals list/);
  });

  it("sandboxes: pages newest first across ties, and the state filter is kept", async () => {
    const [task] = await t.adminDb().$queryRawUnsafe<Array<{ id: string }>>("SELECT id::text FROM tasks LIMIT 1");
    await t.adminDb().$executeRawUnsafe(
      `INSERT INTO sandboxes (task_id, name, kind, created_at, removed_at)
       SELECT $1::uuid, 'sb-list-' || g, 'external', timestamptz '2026-11-02 00:00:00+00' + (g / 3) * interval '1 second',
              CASE WHEN g % 4 = 0 THEN now() END
       FROM generate_series(1, 41) g`,
      task!.id,
    );
    for (const [state, where] of [["all", ""], ["live", "WHERE removed_at IS NULL"]] as const) {
      const expected = (await t.adminDb().$queryRawUnsafe<Array<{ id: string }>>(`SELECT id::text FROM sandboxes ${where} ORDER BY created_at DESC, id DESC`)).map((r) => r.id);
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const res = await get(sandboxesRoute.GET, `/api/v1/sandboxes?state=${state}&limit=4${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
        expect(res.status).toBe(200);
        seen.push(...ids(res.body.sandboxes));
        cursor = (res.body.nextCursor as string | null) ?? undefined;
      } while (cursor);
      expect(seen).toEqual(expected);
      expect((await listSandboxes(t.db, actor, { live: state === "live" })).map((s) => s.id)).toEqual(expected);
    }
  });
});
