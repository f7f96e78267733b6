import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as agentsRoute from "@/app/api/v1/agents/route";
import * as apiKeysRoute from "@/app/api/v1/api-keys/route";
import * as credentialsRoute from "@/app/api/v1/credentials/route";
import * as approvalsRoute from "@/app/api/v1/approvals/route";
import * as sandboxesRoute from "@/app/api/v1/sandboxes/route";
import * as tasksRoute from "@/app/api/v1/tasks/route";
import * as taskTokensRoute from "@/app/api/v1/tasks/[id]/tokens/route";
import { listAgents, listAgentsPage } from "@/lib/agents/view";
import { createApiKey, listApiKeys } from "@/lib/apikeys";
import { listApproversWithScopes } from "@/lib/approvals/approver-scope";
import { ownSessions } from "@/lib/auth/manage-sessions";
import { timeCursor, tokenCursor } from "@/lib/db/list-page";
import { listTaskTokens } from "@/lib/identity/task-tokens";
import { listSandboxes } from "@/lib/sandboxes/view";
import { listTasks, listTasksPage } from "@/lib/tasks/view";
import { listCredentials } from "@/lib/vault/list-credentials";
import { runCli } from "../../support/cli";
import { makeUser, retiredSigningKeyData, unique } from "../../support/factories";
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

  it("decided approvals: newest first a page at a time past the old cap of 200; their positions are not the pending queue's", async () => {
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
    // A decided list's position is not one in the pending queue (nor the other way round).
    const mixed = await get(approvalsRoute.GET, `/api/v1/approvals?state=pending&cursor=${encodeURIComponent(timeCursor("approvals", { atMs: "1", id: agentA }))}`);
    expect(mixed.status).toBe(400);
    expect(JSON.stringify(mixed.body)).toMatch(/cursor is not a position in the pending approvals list/);
    const foreign = await get(approvalsRoute.GET, `/api/v1/approvals?cursor=${encodeURIComponent(timeCursor("tasks", { atMs: "1", id: agentA }))}`);
    expect(foreign.status).toBe(400);
    expect(JSON.stringify(foreign.body)).toMatch(/cursor is not a position in the approvals list/);
  });

  it("pending approvals: past 200 waiting, a page at a time oldest first, none missed or twice, each page a task at a time", async () => {
    const tasks = await t.adminDb().$queryRawUnsafe<Array<{ id: string; agent_id: string }>>("SELECT id::text, agent_id::text FROM tasks ORDER BY created_at, id LIMIT 90");
    expect(tasks.length).toBe(90);
    // 299 waiting over 90 tasks, one task with 30 of them first (a flood), ties of creation time.
    await t.adminDb().$executeRawUnsafe(
      `INSERT INTO approvals (task_id, agent_id, request_digest, method, url, actions, reason, status, created_at, expires_at)
       SELECT (t->>'id')::uuid, (t->>'agent_id')::uuid, 'p' || g, 'DELETE', 'https://api.example.test/p/' || g, '[]'::jsonb, 'held', 'pending',
              timestamptz '2026-12-01 00:00:00+00' + (g / 3) * interval '1 second', now() + interval '1 hour'
       FROM generate_series(1, 299) g, LATERAL (SELECT ($1::jsonb) -> (CASE WHEN g <= 30 THEN 0 ELSE g % 90 END)::int AS t) x`,
      JSON.stringify(tasks),
    );
    const expected = (await t.adminDb().$queryRawUnsafe<Array<{ id: string; task_id: string }>>("SELECT id::text, task_id::text FROM approvals WHERE status = 'pending' ORDER BY created_at, id")).map((r) => r.id);
    expect(expected.length).toBe(299);
    const walk = async (limit: number, between?: (page: number) => Promise<void>) => {
      const pages: Array<Array<{ id: string; taskId: string }>> = [];
      let cursor: string | undefined;
      do {
        const res = await get(approvalsRoute.GET, `/api/v1/approvals?state=pending&limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
        expect(res.status).toBe(200);
        pages.push((res.body.approvals as Array<{ id: string; taskId: string }>).map((a) => ({ id: a.id, taskId: a.taskId })));
        cursor = (res.body.nextCursor as string | null) ?? undefined;
        if (cursor) await between?.(pages.length);
      } while (cursor);
      return pages;
    };
    for (const limit of [200, 7]) {
      const pages = await walk(limit);
      // Every page is the next stretch of the queue, oldest first; together, every waiting action once.
      let at = 0;
      for (const page of pages) {
        expect(new Set(page.map((a) => a.id))).toEqual(new Set(expected.slice(at, at + page.length)));
        at += page.length;
      }
      expect(at).toBe(299);
    }
    // Within the first page the flood's 30 do not fill the top: one per task in turn.
    const [first] = await walk(200).then((p) => p.slice(0, 1));
    const top = first!.slice(0, 20).map((a) => a.taskId);
    expect(new Set(top).size).toBe(20);
    // Decided between two pages: nothing else is skipped or repeated.
    const decided: string[] = [];
    const pages = await walk(50, async (n) => {
      if (n !== 2) return;
      const ids = expected.slice(40, 45).concat(expected.slice(150, 152));
      await t.adminDb().$executeRawUnsafe("UPDATE approvals SET status = 'denied', decided_at = now() WHERE id = ANY($1::uuid[])", ids);
      decided.push(...ids);
    });
    const seen = pages.flat().map((a) => a.id);
    expect(new Set(seen).size).toBe(seen.length);
    expect(new Set(seen)).toEqual(new Set(expected.filter((id) => !expected.slice(150, 152).includes(id))));
    expect(decided).toHaveLength(7);
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

  /** Every row of a list through the API, `limit` a page, and the pages it took. */
  const everyRow = async (handler: Route, path: string, field: string, limit: number, key_: string) => {
    const seen: Array<Record<string, unknown>> = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const res = await callRoute(handler, `${path}?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`, { key: key_ });
      const body = (await res.json()) as Record<string, unknown>;
      expect(res.status, JSON.stringify(body)).toBe(200);
      seen.push(...(body[field] as Array<Record<string, unknown>>));
      cursor = (body.nextCursor as string | null) ?? undefined;
      pages++;
    } while (cursor);
    return { seen, pages };
  };

  it("credentials: past the old cap of 1,000, by name a page at a time, in the API and in `bulkhead credential list`", async () => {
    const CREDENTIALS = 1_012;
    await t.adminDb().$executeRawUnsafe(
      `INSERT INTO credentials (name, scheme, host, port, header_template, secret_sealed)
       SELECT 'cred-' || lpad(g::text, 5, '0'), 'https', 'h' || g || '.example.test', 443, 'Authorization: Bearer {secret}', 'sealed-' || g
       FROM generate_series(1, $1::int) g`,
      CREDENTIALS,
    );
    const expected = (await t.adminDb().$queryRawUnsafe<Array<{ name: string }>>("SELECT name FROM credentials ORDER BY name ASC")).map((r) => r.name);
    expect(expected).toHaveLength(CREDENTIALS);
    const first = await get(credentialsRoute.GET, "/api/v1/credentials");
    expect(first.status).toBe(200);
    expect(first.body.credentials).toHaveLength(500);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const { seen, pages } = await everyRow(credentialsRoute.GET, "/api/v1/credentials", "credentials", 333, key);
    expect(pages).toBe(Math.ceil(CREDENTIALS / 333));
    expect(seen.map((c) => c.name)).toEqual(expected);
    // Metadata only: the sealed secret is never part of a page.
    expect(JSON.stringify(seen)).not.toContain("sealed-");
    expect((await listCredentials(t.db, actor)).map((c) => c.name)).toEqual(expected);
    const run = await runCli(["credential", "list", "--json"], { database: t });
    expect(run.code).toBe(0);
    expect((JSON.parse(run.stdout.join("\n")) as Array<{ name: string }>).map((c) => c.name)).toEqual(expected);
    const foreign = await get(credentialsRoute.GET, `/api/v1/credentials?cursor=${encodeURIComponent(timeCursor("tasks", { atMs: "1", id: agentA }))}`);
    expect(foreign.status).toBe(400);
    expect(JSON.stringify(foreign.body)).toMatch(/cursor is not a position in the credentials list/);
    expect((await get(credentialsRoute.GET, "/api/v1/credentials?limit=0")).status).toBe(400);
  });

  it("API keys: past the old cap of 500, newest first across ties of creation time", async () => {
    const admin = await makeUser(t.db, "admin");
    const adminKey = (await createApiKey(t.db, admin.actor, { name: "keys", role: "admin" })).key;
    await t.adminDb().$executeRawUnsafe(
      `INSERT INTO api_keys (name, prefix, key_hash, role, created_at)
       SELECT 'k' || g, 'p' || md5(random()::text || g), md5(random()::text || g), 'auditor', timestamptz '2026-11-04 00:00:00+00' + (g / 50) * interval '1 second'
       FROM generate_series(1, 530) g`,
    );
    const expected = (await t.adminDb().$queryRawUnsafe<Array<{ id: string }>>("SELECT id::text FROM api_keys ORDER BY created_at DESC, id DESC")).map((r) => r.id);
    expect(expected.length).toBeGreaterThan(530);
    const { seen } = await everyRow(apiKeysRoute.GET, "/api/v1/api-keys", "apiKeys", 97, adminKey);
    expect(seen.map((k) => k.id)).toEqual(expected);
    expect(JSON.stringify(seen)).not.toMatch(/key_?hash/i);
    expect((await listApiKeys(t.db, admin.actor)).map((k) => k.id)).toEqual(expected);
    const foreign = await callRoute(apiKeysRoute.GET, `/api/v1/api-keys?cursor=${encodeURIComponent(timeCursor("tasks", { atMs: "1", id: agentA }))}`, { key: adminKey });
    expect(foreign.status).toBe(400);
  });

  it("a task's tokens: past 500, newest first across ties of issue time, none twice", async () => {
    const task = expectedTasks[0]!;
    const [{ agent_id: agentId } = { agent_id: "" }] = await t.adminDb().$queryRawUnsafe<Array<{ agent_id: string }>>("SELECT agent_id::text FROM tasks WHERE id = $1::uuid", task);
    const { kid } = await t.adminDb().signingKey.create({ data: await retiredSigningKeyData() });
    // 40 tokens share each issue time: their order rests on the jti alone.
    await t.adminDb().$executeRawUnsafe(
      `INSERT INTO issued_tokens (jti, task_id, agent_id, kid, issued_at, expires_at)
       SELECT 'jti_' || md5(random()::text || g), $1::uuid, $2::uuid, $3, timestamptz '2026-11-05 00:00:00+00' + (g / 40) * interval '1 second', now() + interval '1 hour'
       FROM generate_series(1, 523) g`,
      task,
      agentId,
      kid,
    );
    const expected = (await t.adminDb().$queryRawUnsafe<Array<{ jti: string }>>("SELECT jti FROM issued_tokens WHERE task_id = $1::uuid ORDER BY issued_at DESC, jti DESC", task)).map((r) => r.jti);
    expect(expected).toHaveLength(523);
    const page = (query: string) => callRoute(taskTokensRoute.GET, `/api/v1/tasks/${task}/tokens${query}`, { key, params: { id: task } });
    const first = await page("");
    const firstBody = (await first.json()) as { tokens: Array<{ jti: string }>; nextCursor: string | null };
    expect(firstBody.tokens).toHaveLength(500);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await page(`?limit=61${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      const body = (await res.json()) as { tokens: Array<{ jti: string }>; nextCursor: string | null };
      expect(res.status, JSON.stringify(body)).toBe(200);
      seen.push(...body.tokens.map((r) => r.jti));
      cursor = body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(expected);
    expect((await listTaskTokens(t.db, actor, task)).map((r) => r.jti)).toEqual(expected);
    // Another list's cursor, a cursor with a jti that is not one, and a bad limit: 400, never the first page.
    for (const bad of [timeCursor("tasks", { atMs: "1", id: agentA }), tokenCursor({ atMs: "1", jti: "a b" }), "%%%"]) {
      const res = await page(`?cursor=${encodeURIComponent(bad)}`);
      expect(res.status, bad).toBe(400);
      expect(JSON.stringify(await res.json())).toMatch(/cursor/);
    }
    expect((await page("?limit=501")).status).toBe(400);
    expect((await page("?page=2")).status).toBe(400);
  });

  it("approvers on Settings: every one past the old cap of 200, by email", async () => {
    const admin = await makeUser(t.db, "admin");
    const prefix = unique("appr");
    await t.adminDb().$executeRawUnsafe(
      `INSERT INTO users (email, role) SELECT $1 || '-' || lpad(g::text, 4, '0') || '@example.test', 'approver' FROM generate_series(1, 230) g`,
      prefix,
    );
    const expected = (
      await t.adminDb().$queryRawUnsafe<Array<{ email: string }>>("SELECT email FROM users WHERE role IN ('admin', 'approver') AND disabled_at IS NULL ORDER BY email ASC")
    ).map((r) => r.email);
    expect(expected.length).toBeGreaterThan(230);
    expect((await listApproversWithScopes(t.db, admin.actor)).map((u) => u.email)).toEqual(expected);
  });

  it("a person's sessions: the list stops at 200 most recently used and says how many there are", async () => {
    const person = await makeUser(t.db, "auditor");
    await t.adminDb().$executeRawUnsafe(
      `INSERT INTO sessions (token_hash, user_id, expires_at, last_seen_at)
       SELECT md5(random()::text || g), $1::uuid, now() + interval '1 hour', now() - g * interval '1 second' FROM generate_series(1, 230) g`,
      person.user.id,
    );
    const { sessions, total } = await ownSessions(t.db, person.actor);
    expect(sessions).toHaveLength(200);
    expect(total).toBe(230);
  });
});

