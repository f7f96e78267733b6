/**
 * An agent may pad one request with harmless actions or long text so that the action that
 * matters (a production table dropped) lies past what the audit's search columns index (the
 * first 100 actions, 16 KiB of text, and a cap per field). Every filter a security team uses
 * (free text, service, environment; the page, the API and the exports share one WHERE clause)
 * must still find that event. Events are inserted as the worker's role, the way its shipper does.
 */
import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { Actor } from "@/lib/auth/actor";
import { startAuditExport } from "@/lib/audit/export";
import type { AuditFilterInput } from "@/lib/audit/filter";
import { searchAuditEvents } from "@/lib/audit/query";
import { pageQuery, resolveFilter, whereClause } from "@/lib/audit/search";
import { auditSql } from "@/lib/audit/sql";
import { auditFilterInput } from "@/lib/audit/filter";
import { applyGrants } from "@/lib/db/roles/grants";
import { defaultMigrationsDir, migrate, readMigrations } from "@/lib/db/migrate";
import { insertEvents, type GeneratedEvent } from "../../support/audit-events";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser } from "../../support/factories";

const select = (i: number, environment = "staging") => ({ service: "orders-db", environment, resource: `public.t_${i}`, operation: "SELECT", effect: "read", detail: { statement: i } });

function decision(actions: unknown[], extra: Partial<GeneratedEvent> & { url?: string } = {}): GeneratedEvent {
  const { url, ...rest } = extra;
  return {
    type: "proxy.decision",
    actorType: "agent",
    actorId: null,
    outcome: "deny",
    effect: "irreversible",
    reason: "no rule allows it",
    data: { method: "POST", url: url ?? "https://sql.internal.test/sql", service: "orders-db", actions },
    ...rest,
  };
}

/** Each case: the padded event, and the filters that must find it. */
const CASES: Array<{ name: string; event: GeneratedEvent; find: AuditFilterInput[] }> = [
  {
    name: "the 151st action of 1,997",
    event: decision([...Array.from({ length: 150 }, (_, i) => select(i)), { service: "ledger-db", environment: "prod-eu", resource: "public.ledger_entries_hidden", operation: "DROP TABLE", effect: "irreversible" }, ...Array.from({ length: 1846 }, (_, i) => select(i + 150))]),
    find: [{ q: "ledger_entries_hidden" }, { q: "LEDGER_ENTRIES" }, { service: "ledger-db" }, { environment: "prod-eu" }, { service: "ledger-db", environment: "prod-eu", q: "drop table" }],
  },
  {
    name: "an action past 16 KiB of text in 40 actions",
    event: decision([
      ...Array.from({ length: 40 }, (_, i) => ({ service: "orders-db", environment: "staging", resource: `public.${"p".repeat(900)}_${i}`, operation: "SELECT", effect: "read" })),
      { service: "vault-db", environment: "prod-us", resource: "secret_keys_hidden", operation: "TRUNCATE", effect: "destructive" },
    ]),
    find: [{ q: "secret_keys_hidden" }, { service: "vault-db" }, { environment: "prod-us" }],
  },
  {
    name: "the end of a resource longer than its field's cap",
    event: decision([{ service: "orders-db", environment: "staging", resource: `public.${"x".repeat(1500)}_tail_marker_hidden`, operation: "DELETE", effect: "destructive" }]),
    find: [{ q: "tail_marker_hidden" }],
  },
  {
    name: "the end of a long URL",
    event: decision([select(1)], { url: `https://sql.internal.test/${"a".repeat(5000)}/drop-everything-hidden` }),
    find: [{ q: "drop-everything-hidden" }],
  },
  {
    name: "the end of a long reason",
    event: decision([select(2)], { reason: `${"because ".repeat(600)}reason_tail_hidden` }),
    find: [{ q: "reason_tail_hidden" }],
  },
];

describe("audit search finds every action of an event, however long the event", () => {
  let t: TestDatabase;
  let worker: pg.Pool;
  let auditor: Actor;
  const seqOf = new Map<string, string>();

  beforeAll(async () => {
    t = await createTestDatabase();
    worker = new pg.Pool({ connectionString: t.workerUrl, max: 2 });
    auditor = (await makeUser(t.db, "auditor")).actor;
    // Ordinary traffic around the padded events, none of which matches their filters.
    await insertEvents(worker, Array.from({ length: 200 }, (_, i) => decision([select(i), select(i + 1)], { outcome: "allow", effect: "read" })));
    for (const c of CASES) {
      const [seq] = await insertEvents(worker, [c.event]);
      seqOf.set(c.name, seq!);
      await insertEvents(worker, Array.from({ length: 20 }, (_, i) => decision([select(i)], { outcome: "allow", effect: "read" })));
    }
  });
  afterAll(async () => {
    await worker.end();
    await t.drop();
  });

  it.each(CASES.map((c) => [c.name, c] as const))("%s: found by every filter on the page and the API", async (_name, c) => {
    for (const filter of c.find) {
      const page = await searchAuditEvents(t.db, { ...filter, limit: 500 });
      expect(page.events.map((e) => e.seq), JSON.stringify(filter)).toEqual([seqOf.get(c.name)]);
    }
  });

  it.each(CASES.map((c) => [c.name, c] as const))("%s: found by every filter in the exports", async (_name, c) => {
    for (const filter of c.find) {
      const exp = await startAuditExport(t.db, auditor, { ...filter, format: "jsonl" }, { via: "api" });
      let text = "";
      for await (const chunk of exp.chunks) text += chunk;
      const seqs = text.split("\n").filter(Boolean).map((line) => String((JSON.parse(line) as { seq: string | number }).seq));
      expect(seqs, JSON.stringify(filter)).toEqual([seqOf.get(c.name)]);
    }
  });

  it("finds nothing that is not there, in short and long events alike", async () => {
    for (const filter of [{ q: "not_in_any_event" }, { service: "nobody-db" }, { environment: "nowhere" }] as AuditFilterInput[]) {
      expect((await searchAuditEvents(t.db, { ...filter, limit: 500 })).events, JSON.stringify(filter)).toEqual([]);
    }
    // The padding itself is found too, in the long events as in the short ones.
    const staging = await searchAuditEvents(t.db, { environment: "staging", q: "public.t_1900", limit: 500 });
    expect(staging.events.map((e) => e.seq)).toEqual([seqOf.get(CASES[0]!.name)]);
  });
});

describe("the plan of a search on a large log", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
    const worker = new pg.Pool({ connectionString: t.workerUrl, max: 1 });
    try {
      for (let b = 0; b < 20; b++) await insertEvents(worker, Array.from({ length: 1000 }, (_, i) => decision([select(i)], { outcome: "allow", effect: "read", url: `https://sql.internal.test/sql/${b}/${i}` })));
      await insertEvents(worker, [CASES[0]!.event]);
    } finally {
      await worker.end();
    }
  });
  afterAll(() => t.drop());

  // Without statistics too (no ANALYZE has run): a plan that computed the cut test or the full
  // text for every event would cost each search a pass over the whole log.
  it("finds the cut events through their own index, never by computing every event's full text", async () => {
    for (const filter of [{ q: "ledger_entries_hidden" }, { service: "ledger-db" }, { environment: "prod-eu" }] as AuditFilterInput[]) {
      const where = whereClause(await resolveFilter(auditSql(t.db), auditFilterInput.parse(filter)));
      const q = pageQuery(where, "desc", 51);
      const c = new pg.Client({ connectionString: t.url }); // the dashboard's role, which searches
      await c.connect();
      try {
        const plan = (await c.query<{ "QUERY PLAN": string }>(`EXPLAIN ${q.text}`, q.values)).rows.map((r) => r["QUERY PLAN"]).join("\n");
        expect(plan, JSON.stringify(filter)).toContain("audit_events_search_cut_idx");
        expect(plan, JSON.stringify(filter)).not.toMatch(/Seq Scan on audit_events/);
      } finally {
        await c.end();
      }
    }
  });
});

describe("events stored before the search columns' cut was known", () => {
  it("are found by the same filters once the migration has run", async () => {
    const t = await createTestDatabase({ migrate: false });
    const dir = await mkdtemp(path.join(tmpdir(), "bh-migrations-"));
    try {
      // Every migration before 20261205002000_audit_search_complete, then the padded events, then the rest.
      const earlier = (await readMigrations()).filter((m) => m.name < "20261205002000");
      for (const m of earlier) await cp(path.join(defaultMigrationsDir(), m.name), path.join(dir, m.name), { recursive: true });
      await cp(path.join(defaultMigrationsDir(), "migration_lock.toml"), path.join(dir, "migration_lock.toml"));
      await migrate(t.ownerUrl, dir);
      const owner = new pg.Pool({ connectionString: t.ownerUrl, max: 1 });
      const seqs: string[] = [];
      try {
        for (const c of CASES) seqs.push((await insertEvents(owner, [c.event]))[0]!);
      } finally {
        await owner.end();
      }
      await migrate(t.ownerUrl);
      const { names } = inject("databaseRoles");
      await applyGrants(t.ownerUrl, { dashboard: names.dashboard, worker: names.worker });
      for (const [i, c] of CASES.entries()) {
        for (const filter of c.find) {
          const page = await searchAuditEvents(t.db, { ...filter, limit: 500 });
          expect(page.events.map((e) => e.seq), `${c.name} ${JSON.stringify(filter)}`).toEqual([seqs[i]]);
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
      await t.drop();
    }
  });
});
