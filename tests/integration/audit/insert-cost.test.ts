/**
 * Migration 20261202020000_audit_insert_cost rewrote the functions behind the audit log's two
 * generated columns (search_text, facets) for speed. Rows stored before it keep the values the
 * first definitions computed, so the new ones must give the same value for every input: here
 * both are run side by side, the first definitions recreated under other names from the
 * migration that introduced them, on generated and hostile data.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import fc from "fast-check";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultMigrationsDir } from "@/lib/db/migrate";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { withClient } from "./helpers";

interface Case {
  reason: string | null;
  type: string;
  outcome: string | null;
  effect: string | null;
  actorType: string | null;
  actorId: string | null;
  data: unknown;
}

/** The first definitions, renamed reference_*: the three CREATE FUNCTION statements of the search migration. */
async function referenceFunctions(): Promise<string> {
  const sql = await readFile(path.join(defaultMigrationsDir(), "20261201010000_audit_search", "migration.sql"), "utf8");
  const statements = [...sql.matchAll(/CREATE FUNCTION "audit_event_(actions|search_text|facets)"[\s\S]*?\$\$[\s\S]*?\$\$;/g)].map((m) => m[0]);
  expect(statements).toHaveLength(3);
  return statements.map((s) => s.replace(/"audit_event_/g, '"reference_audit_event_').replace(/\baudit_event_actions\(/g, "reference_audit_event_actions(")).join("\n");
}

// The current search_text ends in U+0001 when its caps left part of the event out
// (20261205002000_audit_search_complete): the text before the mark is the first definitions'.
const UNMARKED = (text: string) => `CASE WHEN right(${text}, 1) = chr(1) THEN left(${text}, -1) ELSE ${text} END`;

const COMPARE = `
  SELECT c.i,
         reference_audit_event_search_text(c.reason, c.data) AS ref_text, audit_event_search_text(c.reason, c.data) AS new_text,
         reference_audit_event_facets(c.type, c.outcome, c.effect, c.actor_type, c.actor_id, c.data) AS ref_facets,
         audit_event_facets(c.type, c.outcome, c.effect, c.actor_type, c.actor_id, c.data) AS new_facets
    FROM jsonb_to_recordset($1::jsonb) AS c(i int, reason text, type text, outcome text, effect text, actor_type text, actor_id text, data jsonb)
   WHERE reference_audit_event_search_text(c.reason, c.data) IS DISTINCT FROM ${UNMARKED("audit_event_search_text(c.reason, c.data)")}
      OR reference_audit_event_facets(c.type, c.outcome, c.effect, c.actor_type, c.actor_id, c.data)
         IS DISTINCT FROM audit_event_facets(c.type, c.outcome, c.effect, c.actor_type, c.actor_id, c.data)`;

// Text jsonb can store: no NUL, no lone surrogates; upper case and non-ASCII to exercise lower().
const text = fc.oneof(
  fc.constantFrom("", " ", "GET", "Railway", "PRODUCTION", "vol_1", "a b", "Ünïcode É", "日本", "🔑", "x.y.z", "%_\\"),
  fc.string({ unit: "grapheme", maxLength: 12 }).map((s) => s.replace(/\u0000/g, "")),
  fc.integer({ min: 1, max: 5000 }).map((n) => "Ab".repeat(n)),
);
const scalar = fc.oneof(text, fc.integer(), fc.boolean(), fc.constant(null), fc.double({ noNaN: true, noDefaultInfinity: true }));
const value = fc.oneof({ weight: 4, arbitrary: text }, { weight: 1, arbitrary: scalar }, { weight: 1, arbitrary: fc.array(scalar, { maxLength: 3 }) }, { weight: 1, arbitrary: fc.dictionary(fc.constantFrom("a", "service"), scalar) });
const action = fc.oneof(
  { weight: 6, arbitrary: fc.record({ service: value, environment: value, resource: value, operation: value, effect: value }, { requiredKeys: [] }) },
  { weight: 1, arbitrary: scalar },
  { weight: 1, arbitrary: fc.array(scalar, { maxLength: 2 }) },
);
const actions = fc.oneof(
  { weight: 6, arbitrary: fc.array(action, { maxLength: 6 }) },
  { weight: 1, arbitrary: fc.array(action, { minLength: 95, maxLength: 140 }) },
  { weight: 1, arbitrary: scalar },
  { weight: 1, arbitrary: fc.dictionary(text, scalar, { maxKeys: 2 }) },
);
const data = fc.oneof(
  { weight: 8, arbitrary: fc.record({ method: value, url: value, service: value, code: value, actions, other: scalar }, { requiredKeys: [] }) },
  { weight: 1, arbitrary: scalar },
  { weight: 1, arbitrary: fc.array(fc.record({ service: text }), { maxLength: 3 }) },
);
const cases: fc.Arbitrary<Case> = fc.record({
  reason: fc.option(text, { nil: null }),
  type: fc.oneof(fc.constantFrom("proxy.decision", "proxy.completed", "admin", "a.b.c", ".x", ""), text),
  outcome: fc.option(fc.oneof(fc.constantFrom("allow", "deny", "hold"), text), { nil: null }),
  effect: fc.option(fc.oneof(fc.constantFrom("read", "write", "destructive", "irreversible"), text), { nil: null }),
  actorType: fc.option(fc.constantFrom("agent", "user", "api_key", "system", "Agent", ""), { nil: null }),
  actorId: fc.option(text, { nil: null }),
  data,
});

const rows = (list: Case[]) =>
  JSON.stringify(list.map((c, i) => ({ i, reason: c.reason, type: c.type, outcome: c.outcome, effect: c.effect, actor_type: c.actorType, actor_id: c.actorId, data: c.data })));

describe("the faster search columns compute what the first definitions computed", () => {
  let t: TestDatabase;
  let c: pg.Client;
  beforeAll(async () => {
    t = await createTestDatabase();
    await withClient(t.ownerUrl, async (o) => o.query(await referenceFunctions()));
    c = new pg.Client({ connectionString: t.url });
    await c.connect();
  });
  afterAll(async () => {
    await c.end();
    await t.drop();
  });

  it("on hand-picked edges: no actions, more than 100, duplicates, NULLs, non-objects, long values", async () => {
    const base: Case = { reason: "Rule X allows GET", type: "proxy.decision", outcome: "allow", effect: "read", actorType: "agent", actorId: "a", data: {} };
    const many = (n: number, f: (k: number) => unknown) => Array.from({ length: n }, (_, k) => f(k));
    const edges: Case[] = [
      base,
      { ...base, data: { method: "GET", url: "HTTP://Host/Path", service: "railway", code: "E1", actions: [] } },
      { ...base, data: { actions: [{}] } },
      { ...base, data: { actions: [{}, {}, 1, "x", null, [], { service: null }] } },
      { ...base, data: { actions: many(150, (k) => ({ service: `s${k % 7}`, environment: `E${k % 3}`, resource: `r${k}`, operation: "op" })) } },
      { ...base, data: { actions: many(130, (k) => (k % 2 ? { service: `svc${k}` } : k)) } },
      { ...base, data: { actions: many(12, () => ({ service: "same", environment: "same" })) } },
      { ...base, data: { service: "a".repeat(400), actions: [{ service: "b".repeat(292), environment: "c".repeat(300) }] } },
      { ...base, data: { url: "U".repeat(20_000), actions: [{ resource: "R".repeat(3000) }] } },
      { ...base, reason: null, outcome: null, effect: null, actorType: null, actorId: null, data: "scalar" },
      { ...base, actorType: "user", actorId: null, data: [{ service: "in-an-array" }] },
      { ...base, actorType: "system", actorId: "bulkhead", type: "nodot", data: { actions: { service: "not-an-array" } } },
      { ...base, reason: "R".repeat(5000), data: { method: "M".repeat(100), actions: [{ service: 1, environment: true, resource: { a: 1 }, operation: [1] }] } },
    ];
    const { rows: differing } = await c.query(COMPARE, [rows(edges)]);
    expect(differing).toEqual([]);
  });

  it("on 2,000 generated events", async () => {
    const sample = fc.sample(cases, { numRuns: 2000, seed: 20261202 });
    for (let i = 0; i < sample.length; i += 250) {
      const { rows: differing } = await c.query(COMPARE, [rows(sample.slice(i, i + 250))]);
      expect(differing).toEqual([]);
    }
  });

  it("as stored: the generated columns of inserted rows equal the first definitions' values", async () => {
    // Stored rows carry one of the four actor types (a CHECK constraint since 20261207101000).
    const sample = fc.sample(cases, { numRuns: 300, seed: 7 }).filter((x) => x.actorType !== null && ["agent", "user", "api_key", "system"].includes(x.actorType) && x.data !== null);
    await c.query(
      `INSERT INTO audit_events (type, actor_type, actor_id, outcome, effect, reason, data)
       SELECT type, actor_type, actor_id, outcome, effect, reason, data
         FROM jsonb_to_recordset($1::jsonb) AS c(i int, reason text, type text, outcome text, effect text, actor_type text, actor_id text, data jsonb) ORDER BY i`,
      [rows(sample)],
    );
    const { rows: check } = await c.query<{ n: number; same: number }>(
      `SELECT count(*)::int AS n,
              count(*) FILTER (WHERE ${UNMARKED("search_text")} IS NOT DISTINCT FROM reference_audit_event_search_text(reason, data)
                                 AND facets = reference_audit_event_facets(type, outcome, effect, actor_type, actor_id, data))::int AS same
         FROM audit_events`,
    );
    expect(check[0]).toEqual({ n: sample.length, same: sample.length });
  });

  // An event without the mark is held whole by its columns: the text without any cap, and the
  // facets of every action, are what the columns hold. Else a search would skip its full text.
  const UNCUT_BUT_DIFFERENT = `
    SELECT c.i FROM jsonb_to_recordset($1::jsonb) AS c(i int, reason text, type text, outcome text, effect text, actor_type text, actor_id text, data jsonb)
     WHERE NOT coalesce(audit_event_search_cut(audit_event_search_text(c.reason, c.data)), false)
       AND (audit_event_search_text(c.reason, c.data) IS DISTINCT FROM audit_event_search_text_full(c.reason, c.data)
            OR audit_event_facets(c.type, c.outcome, c.effect, c.actor_type, c.actor_id, c.data)
               IS DISTINCT FROM audit_event_facets_full(c.type, c.outcome, c.effect, c.actor_type, c.actor_id, c.data))`;

  it("marks every event whose columns left something out, on generated events", async () => {
    const sample = fc.sample(cases, { numRuns: 2000, seed: 20261205 });
    for (let i = 0; i < sample.length; i += 250) {
      const { rows: missed } = await c.query(UNCUT_BUT_DIFFERENT, [rows(sample.slice(i, i + 250))]);
      expect(missed).toEqual([]);
    }
    const { rows: marked } = await c.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM jsonb_to_recordset($1::jsonb) AS c(reason text, data jsonb) WHERE audit_event_search_cut(audit_event_search_text(c.reason, c.data))`,
      [rows(sample)],
    );
    expect(marked[0]!.n).toBeGreaterThan(0);
  });
});
