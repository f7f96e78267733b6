import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ZodError } from "zod";
import type { Actor } from "@/lib/auth/actor";
import { listAuditEvents, searchAuditEvents } from "@/lib/audit/query";
import type { AuditFilterInput } from "@/lib/audit/filter";
import { recordAuditEvent } from "@/lib/audit/record";
import { insertEvents, proxyDecisions, type GeneratedEvent } from "../../support/audit-events";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser } from "../../support/factories";
import { makeFleet } from "./fleet";

interface Ref {
  seq: bigint;
  at: Date;
  type: string;
  actor_type: string;
  actor_id: string | null;
  agent_id: string | null;
  task_id: string | null;
  outcome: string | null;
  effect: string | null;
  reason: string | null;
  data: Record<string, unknown> | unknown[] | string | number | null;
}

/** The obvious (slow) reading of each filter, to compare the indexed SQL against. */
function matches(r: Ref, f: { from?: Date; to?: Date; agentIds?: string[]; task?: string; userIds?: string[]; types?: string[]; outcome?: string[]; effect?: string[]; service?: string[]; environment?: string[]; q?: string }): boolean {
  const d = typeof r.data === "object" && r.data !== null && !Array.isArray(r.data) ? (r.data as Record<string, unknown>) : {};
  const actions = (Array.isArray(d.actions) ? d.actions : []).filter((a): a is Record<string, unknown> => typeof a === "object" && a !== null && !Array.isArray(a));
  const str = (v: unknown) => (v === undefined || v === null ? null : typeof v === "string" ? v : JSON.stringify(v));
  if (f.from && r.at < f.from) return false;
  if (f.to && r.at >= f.to) return false;
  if (f.agentIds && !f.agentIds.includes(r.agent_id ?? "")) return false;
  if (f.task && r.task_id !== f.task) return false;
  if (f.userIds && !(r.actor_type === "user" && f.userIds.includes(r.actor_id ?? ""))) return false;
  if (f.types && !f.types.some((t) => (t.endsWith(".*") ? r.type.startsWith(t.slice(0, -1)) : r.type === t))) return false;
  if (f.outcome && !f.outcome.includes(r.outcome ?? "")) return false;
  if (f.effect && !f.effect.includes(r.effect ?? "")) return false;
  if (f.service && !f.service.some((s) => d.service === s || actions.some((a) => a.service === s))) return false;
  if (f.environment && !f.environment.some((e) => actions.some((a) => a.environment === e))) return false;
  if (f.q) {
    const text = [r.reason, str(d.method), str(d.url), str(d.service), str(d.code), ...actions.flatMap((a) => [str(a.service), str(a.environment), str(a.resource), str(a.operation)])]
      .filter((x) => x !== null)
      .join(" ")
      .toLowerCase();
    if (!text.includes(f.q.toLowerCase())) return false;
  }
  return true;
}

describe("audit search: keyset pages, filters, names", () => {
  let t: TestDatabase;
  let pool: pg.Pool;
  let admin: Actor;
  let auditor: Actor;
  let adminEmail: string;
  let fleet: Awaited<ReturnType<typeof makeFleet>>;

  /** Every event matching `input`, collected page by page with the real API. */
  async function all(input: AuditFilterInput, limit = 250): Promise<string[]> {
    const seqs: string[] = [];
    let cursor: string | undefined;
    for (;;) {
      const page = await searchAuditEvents(t.db, { ...input, limit, cursor });
      seqs.push(...page.events.map((e) => e.seq));
      if (!page.nextCursor) return seqs;
      cursor = page.nextCursor;
    }
  }

  async function reference(f: Parameters<typeof matches>[1]): Promise<string[]> {
    const rows = await pool.query<Ref>("SELECT seq, at, type, actor_type, actor_id, agent_id::text AS agent_id, task_id::text AS task_id, outcome, effect, reason, data FROM audit_events ORDER BY seq DESC");
    return rows.rows.filter((r) => matches(r, f)).map((r) => String(r.seq));
  }

  beforeAll(async () => {
    t = await createTestDatabase();
    pool = new pg.Pool({ connectionString: t.url, max: 4 });
    const a = await makeUser(t.db, "admin");
    admin = a.actor;
    adminEmail = a.email;
    auditor = (await makeUser(t.db, "auditor")).actor;
    fleet = await makeFleet(t.db, a.user.id);
    await insertEvents(pool, proxyDecisions(fleet, 1500, { seed: 7, start: new Date("2026-11-01T00:00:00Z"), stepMs: 60_000 }));
    // Control-plane events by a user, interleaved with more proxy traffic.
    for (let i = 0; i < 20; i++) await recordAuditEvent(t.db, { type: i % 2 ? "task.created" : "settings.changed", actor: admin, taskId: fleet.tasks[i % fleet.tasks.length]!.id, data: { n: i } });
    await insertEvents(pool, proxyDecisions(fleet, 500, { seed: 8, start: new Date("2026-11-03T00:00:00Z"), stepMs: 1_000 }));
  });
  afterAll(async () => {
    await pool.end();
    await t.drop();
  });

  it("pages newest first through the whole log, and never skips or repeats while events are inserted", async () => {
    for (const filter of [{}, { outcome: "deny" }, { service: "railway", q: "vol_" }] as AuditFilterInput[]) {
      let inserting = true;
      let inserted = 0;
      const writer = (async () => {
        for (let i = 0; inserting; i++) {
          await insertEvents(pool, proxyDecisions(fleet, 7, { seed: 100 + i }));
          inserted += 7;
        }
      })();
      const seen: string[] = [];
      let cursor: string | undefined;
      let top: string | null = null;
      try {
        for (;;) {
          const page = await searchAuditEvents(t.db, { ...filter, limit: 37, cursor });
          top ??= page.events[0]?.seq ?? null;
          seen.push(...page.events.map((e) => e.seq));
          if (!page.nextCursor) break;
          cursor = page.nextCursor;
          await new Promise((r) => setImmediate(r)); // let the writer commit between pages
        }
      } finally {
        inserting = false;
        await writer;
      }
      expect(inserted).toBeGreaterThan(0);
      const asNumbers = seen.map(BigInt);
      for (let i = 1; i < asNumbers.length; i++) expect(asNumbers[i]! < asNumbers[i - 1]!, `strictly older at ${i}`).toBe(true);
      expect(new Set(seen).size).toBe(seen.length);
      // Exactly the matching events that existed when the first page was read: none skipped.
      const expected = (await all(filter, 500)).filter((s) => BigInt(s) <= BigInt(top!));
      expect(seen).toEqual(expected);
    }
  });

  it("goes back a page with `after` and lands on exactly the newer page", async () => {
    const first = await searchAuditEvents(t.db, { outcome: "hold", limit: 20 });
    const second = await searchAuditEvents(t.db, { outcome: "hold", limit: 20, cursor: first.nextCursor! });
    expect(first.prevCursor).toBeNull();
    expect(second.prevCursor).toBe(second.events[0]!.seq);
    const back = await searchAuditEvents(t.db, { outcome: "hold", limit: 20, after: second.prevCursor! });
    expect(back.events.map((e) => e.seq)).toEqual(first.events.map((e) => e.seq));
    expect(back.nextCursor).toBe(first.events[first.events.length - 1]!.seq);
  });

  it("applies every filter exactly as written, alone and combined", async () => {
    const agent = fleet.agents[1]!;
    const task = fleet.tasks[3]!;
    const cases: Array<[AuditFilterInput, Parameters<typeof matches>[1]]> = [
      [{ from: "2026-11-01T10:00:00Z", to: "2026-11-01T20:00:00Z" }, { from: new Date("2026-11-01T10:00:00Z"), to: new Date("2026-11-01T20:00:00Z") }],
      [{ from: "2026-11-03" }, { from: new Date("2026-11-03T00:00:00Z") }],
      [{ agent: agent.id }, { agentIds: [agent.id] }],
      [{ agent: agent.name }, { agentIds: [agent.id] }],
      [{ task: task.id }, { task: task.id }],
      [{ task: task.id.toUpperCase() }, { task: task.id }],
      [{ user: adminEmail }, { userIds: [(admin as { userId: string }).userId] }],
      [{ user: (admin as { userId: string }).userId }, { userIds: [(admin as { userId: string }).userId] }],
      [{ type: "proxy.hold" }, { types: ["proxy.hold"] }],
      [{ type: ["proxy.hold", "proxy.approved"] }, { types: ["proxy.hold", "proxy.approved"] }],
      [{ type: "task.*" }, { types: ["task.*"] }],
      [{ type: "settings." }, { types: ["settings.*"] }],
      [{ outcome: "deny" }, { outcome: ["deny"] }],
      [{ outcome: "hold,deny" }, { outcome: ["hold", "deny"] }],
      [{ effect: "irreversible" }, { effect: ["irreversible"] }],
      [{ service: "orders-db" }, { service: ["orders-db"] }],
      [{ environment: "staging" }, { environment: ["staging"] }],
      [{ q: "vol_00" }, { q: "vol_00" }],
      [{ q: "VOLUMEDELETE" }, { q: "volumedelete" }],
      [{ q: "/repos/acme/app/pulls" }, { q: "/repos/acme/app/pulls" }],
      [{ q: "held for approval" }, { q: "held for approval" }],
      [{ q: "policy_deny" }, { q: "policy_deny" }],
      [{ agent: agent.name, outcome: "deny", service: "railway", environment: "production", effect: "irreversible" }, { agentIds: [agent.id], outcome: ["deny"], service: ["railway"], environment: ["production"], effect: ["irreversible"] }],
      [{ task: task.id, q: "orders_", from: "2026-11-02" }, { task: task.id, q: "orders_", from: new Date("2026-11-02T00:00:00Z") }],
    ];
    for (const [input, ref] of cases) {
      const expected = await reference(ref);
      expect(await all(input), JSON.stringify(input)).toEqual(expected);
    }
    // The filters are not vacuous: each of these found something and left something out.
    const total = (await reference({})).length;
    for (const [input, ref] of cases.slice(0, 22)) {
      const n = (await reference(ref)).length;
      expect(n, JSON.stringify(input)).toBeGreaterThan(0);
      expect(n, JSON.stringify(input)).toBeLessThan(total);
    }
  });

  it("treats search text literally: % and _ are characters, not wildcards", async () => {
    await insertEvents(pool, [
      { type: "proxy.decision", actorType: "system", actorId: null, outcome: "deny", reason: "literal 50%_off marker", data: { url: "https://x.test/a%25b" } },
      { type: "proxy.decision", actorType: "system", actorId: null, outcome: "deny", reason: "literal 50xyoff marker", data: {} },
    ]);
    const hits = await searchAuditEvents(t.db, { q: "50%_off" });
    expect(hits.events.map((e) => e.reason)).toEqual(["literal 50%_off marker"]);
  });

  it("says when a filter matches nothing, and why when a name is unknown", async () => {
    const unknownAgent = await searchAuditEvents(t.db, { agent: "no-such-agent" });
    expect(unknownAgent.events).toEqual([]);
    expect(unknownAgent.nothing).toBe("no agent has that name");
    const unknownUser = await searchAuditEvents(t.db, { user: "nobody@example.test" });
    expect(unknownUser.events).toEqual([]);
    expect(unknownUser.nothing).toBe("no user has that email");
    const none = await searchAuditEvents(t.db, { q: "zzzz-never-recorded" });
    expect(none.events).toEqual([]);
    expect(none.nothing).toBeNull();
    expect(none.nextCursor).toBeNull();
  });

  it("refuses filters that cannot mean anything, with sentences", async () => {
    const bad: Array<[AuditFilterInput, RegExp]> = [
      [{ q: "ab" }, /at least 3 characters/],
      [{ from: "yesterday" }, /ISO 8601/],
      [{ from: "2026-11-02", to: "2026-11-01" }, /later than from/],
      [{ task: "not-a-uuid" }, /task's id/],
      [{ effect: "catastrophic" }, /effect is one of/],
      [{ outcome: "DROP TABLE" }, /lower-case word/],
      [{ type: Array.from({ length: 21 }, (_, i) => `t.${i}`) }, /at most 20/],
    ];
    for (const [input, message] of bad) {
      const error = await searchAuditEvents(t.db, input).catch((e: unknown) => e);
      expect(error, JSON.stringify(input)).toBeInstanceOf(ZodError);
      expect((error as ZodError).issues.map((i) => i.message).join(" "), JSON.stringify(input)).toMatch(message);
    }
    const badCursor = await searchAuditEvents(t.db, { cursor: "1 OR 1=1" } as never).catch((e: unknown) => e);
    expect(badCursor).toBeInstanceOf(ZodError);
  });

  it("records and finds events whose data an agent shaped oddly, without failing the insert", async () => {
    const odd: GeneratedEvent[] = [
      { type: "proxy.decision", actorType: "agent", actorId: null, outcome: "deny", reason: "odd-1", data: { actions: "not an array", url: 42 } },
      { type: "proxy.decision", actorType: "agent", actorId: null, outcome: "deny", reason: "odd-2", data: { actions: [1, "two", null, [3], { operation: { nested: true }, resource: "odd-resource-2" }] } },
      { type: "proxy.decision", actorType: "agent", actorId: null, outcome: "deny", reason: "odd-3", data: [1, 2, 3] },
      { type: "proxy.decision", actorType: "agent", actorId: null, outcome: "deny", reason: "odd-4", data: "a string" },
      { type: "proxy.decision", actorType: "agent", actorId: null, outcome: "deny", reason: `odd-5 ${"x".repeat(200_000)}`, data: { url: `https://big.test/${"y".repeat(100_000)}` } },
      { type: "proxy.decision", actorType: "agent", actorId: null, outcome: "deny", reason: "odd-6", data: { actions: Array.from({ length: 5000 }, (_, i) => ({ service: `svc${i}`, environment: "e", resource: `many-${i}`, operation: "op", effect: "read" })) } },
      { type: "x".repeat(400), actorType: "agent", actorId: null, outcome: "y".repeat(400), reason: "odd-7", data: { service: "s".repeat(1000) } },
    ];
    const seqs = await insertEvents(pool, odd);
    expect(seqs).toHaveLength(odd.length);
    expect((await searchAuditEvents(t.db, { q: "odd-resource-2" })).events.map((e) => e.reason)).toEqual(["odd-2"]);
    expect((await searchAuditEvents(t.db, { q: "many-42" })).events.map((e) => e.reason)).toEqual(["odd-6"]); // within the first 100 actions
    // Beyond them, past what the columns index: found all the same (search-long-events.test.ts).
    expect((await searchAuditEvents(t.db, { q: "many-4242" })).events.map((e) => e.reason)).toEqual(["odd-6"]);
    expect((await searchAuditEvents(t.db, { service: "svc4242" })).events.map((e) => e.reason)).toEqual(["odd-6"]);
    expect((await searchAuditEvents(t.db, { q: "odd-5 xxx" })).events).toHaveLength(1);
    expect((await searchAuditEvents(t.db, { service: "svc7" })).events.map((e) => e.reason)).toEqual(["odd-6"]);
    expect((await searchAuditEvents(t.db, { q: "odd-5 xxx" })).events).toHaveLength(1);
  });

  it("answers through the indexes (a trigram index for text, one GIN index for equality filters)", async () => {
    await pool.query("ANALYZE audit_events");
    const c = await pool.connect();
    try {
      await c.query("SET enable_seqscan = off");
      // Rule out walking the seq index backwards with a filter, which ANALYZE's random sample can
      // make look cheaper for LIMIT 50 on this small table; GIN indexes are read by bitmap scans,
      // which stay allowed.
      await c.query("SET enable_indexscan = off");
      const plan = async (where: string, params: unknown[]) =>
        JSON.stringify((await c.query(`EXPLAIN (FORMAT JSON) SELECT seq FROM audit_events e WHERE ${where} ORDER BY seq DESC LIMIT 50`, params)).rows);
      expect(await plan("e.search_text LIKE lower($1)", ["%vol_0042%"])).toContain("audit_events_search_text_idx");
      expect(await plan("e.facets && $1::text[]", [["outcome:approve"]])).toContain("audit_events_facets_idx");
    } finally {
      c.release();
    }
  });

  it("shows names instead of ids: agent name, task purpose, user email", async () => {
    const page = await searchAuditEvents(t.db, { type: "task.created", limit: 1 });
    const e = page.events[0]!;
    expect(e.actor).toEqual({ type: "user", id: (admin as { userId: string }).userId, name: adminEmail });
    expect(e.task?.purpose).toBe(fleet.purposes.get(e.task!.id));
    const proxy = (await searchAuditEvents(t.db, { type: "proxy.decision", agent: fleet.agents[0]!.id, limit: 1 })).events[0]!;
    expect(proxy.agent).toEqual({ id: fleet.agents[0]!.id, name: fleet.agents[0]!.name });
    expect(proxy.actor.name).toBe(fleet.agents[0]!.name);
    expect(proxy.actions[0]).toMatchObject({ service: expect.any(String), environment: expect.any(String), operation: expect.any(String) });
  });

  it("records every read of the log: who, which filter, which page", async () => {
    const page = await listAuditEvents(t.db, auditor, { outcome: "deny", q: "railway", limit: 5 }, "dashboard");
    await listAuditEvents(t.db, auditor, { outcome: "deny", q: "railway", limit: 5, cursor: page.nextCursor! }, "api");
    const reads = await t.db.auditEvent.findMany({ where: { type: "audit.viewed", actorId: (auditor as { userId: string }).userId }, orderBy: { seq: "asc" } });
    expect(reads).toHaveLength(2);
    expect(reads[0]!.data).toEqual({ via: "dashboard", filter: { outcome: ["deny"], q: "railway" }, limit: 5, rows: 5 });
    expect(reads[1]!.data).toMatchObject({ via: "api", cursor: page.nextCursor, filter: { outcome: ["deny"], q: "railway" } });
    expect(reads[0]!.actorType).toBe("user");
  });
});
