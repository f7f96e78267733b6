import { cp, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import fc from "fast-check";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { canonicalEventText, eventHash, GENESIS_HASH, jsonbText } from "@/lib/audit/chain";
import { verifyAuditChain } from "@/lib/audit/verify";
import { defaultMigrationsDir, migrate } from "@/lib/db/migrate";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { withClient } from "./helpers";

interface Stored {
  seq: string;
  prev_hash: string;
  hash: string;
  at: Date;
  type: string;
  actor_type: string;
  actor_id: string | null;
  agent_id: string | null;
  task_id: string | null;
  outcome: string | null;
  effect: string | null;
  reason: string | null;
  rule_id: string | null;
  data_text: string;
  db_text: string;
}

const fields = (r: Stored) => ({
  seq: r.seq,
  prevHash: r.prev_hash,
  at: r.at,
  type: r.type,
  actorType: r.actor_type,
  actorId: r.actor_id,
  agentId: r.agent_id,
  taskId: r.task_id,
  outcome: r.outcome,
  effect: r.effect,
  reason: r.reason,
  ruleId: r.rule_id,
  dataText: r.data_text,
});

const SELECT = `SELECT seq::text AS seq, prev_hash, hash, at, type, actor_type, actor_id, agent_id::text AS agent_id, task_id::text AS task_id,
  outcome, effect, reason, rule_id, data::text AS data_text,
  audit_event_canonical_text(seq, prev_hash, at, type, actor_type, actor_id, agent_id, task_id, outcome, effect, reason, rule_id, data) AS db_text
  FROM audit_events`;

describe("the hash chain computed by PostgreSQL is the one TypeScript recomputes", () => {
  let t: TestDatabase;
  let c: pg.Client;
  beforeAll(async () => {
    t = await createTestDatabase();
    c = new pg.Client({ connectionString: t.url });
    await c.connect();
  });
  afterAll(async () => {
    await c.end();
    await t.drop();
  });

  it("for tricky rows: unicode, NULLs, empty strings, '|', nested and odd JSON", async () => {
    const tricky: Array<[string, string | null, string | null, string | null, string]> = [
      ["plain", "actor", "allow", "reason", "{}"],
      ["nulls", null, null, null, '{"a": null}'],
      ["empty", "", "", "", '{"": ""}'],
      ["pipes|and|more", "a|b", "|", "-", '{"x|y": "|"}'],
      ["unicode é 日本 🔑", "ünï", "✓", "\u2028 line sep", '{"emoji": "🔑", "é": ["日本", {"k": "\\u0001\\n\\"q\\""}]}'],
      ["numbers", "n", null, "1:2", '{"big": 1e21, "small": 1.5e-7, "trail": 1.50, "neg": -0, "int": 12345678901234567890}'],
      ["dup keys", "d", null, null, '{"a": 1, "a": 2, "bb": {"z": [], "y": {}}}'],
      ["scalar data", "s", null, null, '"just a string"'],
    ];
    for (const [type, actorId, outcome, reason, data] of tricky) {
      await c.query(
        `INSERT INTO audit_events (type, actor_type, actor_id, agent_id, outcome, reason, data, at)
         VALUES ($1, 'system', $2, gen_random_uuid(), $3, $4, $5::jsonb, now() - interval '1 day' * random())`,
        [type, actorId, outcome, reason, data],
      );
    }
    const { rows } = await c.query<Stored>(`${SELECT} ORDER BY seq`);
    expect(rows).toHaveLength(tricky.length);
    let prev = GENESIS_HASH;
    rows.forEach((r, i) => {
      expect(r.seq).toBe(String(i + 1));
      expect(r.prev_hash).toBe(prev);
      expect(canonicalEventText(fields(r))).toBe(r.db_text);
      expect(eventHash(fields(r))).toBe(r.hash);
      prev = r.hash;
    });
  });

  it("for the pinned unit-test vector", async () => {
    const { rows } = await c.query<{ h: string }>(
      `SELECT audit_event_hash(42, repeat('ab', 32), '2026-11-25T12:34:56.789Z', 'proxy.decision', 'agent', NULL,
        '0f8fad5b-d9cb-469f-a165-70867728950e', NULL, 'deny', '', 'a|b', 'é', '{"a": 1}') AS h`,
    );
    expect(rows[0]!.h).toBe("f42dcd68045f8c3020f51b48422a0fc4af196a62855a583361da4425eda0f5e8");
  });

  it("jsonbText reproduces data::text for arbitrary JSON values", async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue({ maxDepth: 4 }), async (value) => {
        const { rows } = await c.query<{ t: string }>("SELECT $1::jsonb::text AS t", [JSON.stringify(value)]);
        expect(jsonbText(value)).toBe(rows[0]!.t);
      }),
      { numRuns: 300 },
    );
  });

  // The runtime roles may not even name id, seq, prev_hash or hash in an INSERT (column grants,
  // database-roles.test.ts); these two are about the trigger, so they insert as the owner.
  it("ignores seq, prev_hash and hash sent by the client", async () => {
    await withClient(t.ownerUrl, (o) => o.query(`INSERT INTO audit_events (type, actor_type, seq, prev_hash, hash) VALUES ('forge', 'system', 1000, $1, $1)`, ["f".repeat(64)]));
    const { rows } = await c.query<Stored>(`${SELECT} WHERE type = 'forge'`);
    expect(rows[0]!.seq).not.toBe("1000");
    expect(rows[0]!.hash).toBe(eventHash(fields(rows[0]!)));
  });

  // The row trigger hands the chain's end on from row to row; a row it chained that is then not
  // stored would leave the next row linked to nothing. The statement is refused whole instead.
  it("refuses a multi-row insert that drops a chained row (ON CONFLICT DO NOTHING), keeping nothing of it", async () => {
    const before = await c.query<{ n: number; head: string }>("SELECT count(*)::int AS n, (SELECT seq::text FROM audit_chain_head) AS head FROM audit_events");
    await expect(
      withClient(t.ownerUrl, (o) =>
        o.query(`INSERT INTO audit_events (id, type, actor_type)
          SELECT id, 'conflict', 'system' FROM (SELECT max(id) AS id FROM audit_events UNION ALL SELECT 10000000) v
          ON CONFLICT (id) DO NOTHING`),
      ),
    ).rejects.toThrow(/2 rows were chained after seq \d+ but 1 are stored/);
    const after = await c.query<{ n: number; head: string }>("SELECT count(*)::int AS n, (SELECT seq::text FROM audit_chain_head) AS head FROM audit_events");
    expect(after.rows[0]).toEqual(before.rows[0]);
    // The same rows without the conflict go in, chained after the head.
    await withClient(t.ownerUrl, (o) => o.query(`INSERT INTO audit_events (id, type, actor_type) VALUES (10000000, 'conflict', 'system') ON CONFLICT (id) DO NOTHING`));
    expect(await verifyAuditChain(c, { checkpointKeys: [] })).toMatchObject({ ok: true });
  });

  it("ignores a chain end the client set itself before an insert", async () => {
    const head = await c.query<{ seq: string; hash: string }>("SELECT seq::text, hash FROM audit_chain_head");
    await c.query("BEGIN");
    await c.query("SELECT set_config('bulkhead.chain_seq', '999999', true), set_config('bulkhead.chain_hash', $1, true)", ["e".repeat(64)]);
    await c.query("INSERT INTO audit_events (type, actor_type) VALUES ('forged-end', 'system'), ('forged-end', 'system')");
    await c.query("COMMIT");
    const { rows } = await c.query<{ seq: string; prev_hash: string }>("SELECT seq::text, prev_hash FROM audit_events WHERE type = 'forged-end' ORDER BY seq");
    expect(rows.map((r) => r.seq)).toEqual([String(Number(head.rows[0]!.seq) + 1), String(Number(head.rows[0]!.seq) + 2)]);
    expect(rows[0]!.prev_hash).toBe(head.rows[0]!.hash);
    expect(await verifyAuditChain(c, { checkpointKeys: [] })).toMatchObject({ ok: true });
  });

  it("refuses, with a message, a row whose statement trigger was switched off (no chain end to continue from)", async () => {
    await withClient(t.ownerUrl, async (o) => {
      await o.query("BEGIN");
      await o.query("ALTER TABLE audit_events DISABLE TRIGGER audit_events_chain_lock");
      await expect(o.query("INSERT INTO audit_events (type, actor_type) VALUES ('no-lock', 'system')")).rejects.toThrow(/the chain's end was not set for this statement/);
      await o.query("ROLLBACK");
    });
    expect(await verifyAuditChain(c, { checkpointKeys: [] })).toMatchObject({ ok: true });
  });

  it("chains several multi-row statements in one transaction, and a statement run inside another", async () => {
    await withClient(t.ownerUrl, async (o) => {
      // A function that inserts an audit row while the outer INSERT is between its rows.
      await o.query(`CREATE FUNCTION pg_temp.nested_audit(k int) RETURNS boolean LANGUAGE plpgsql AS $f$
        BEGIN INSERT INTO audit_events (type, actor_type, reason) VALUES ('nested', 'system', k::text); RETURN true; END $f$`);
      await o.query("BEGIN");
      await o.query("INSERT INTO audit_events (type, actor_type, reason) SELECT 'multi', 'system', g::text FROM generate_series(1, 50) g");
      await o.query("INSERT INTO audit_events (type, actor_type, reason) SELECT 'multi', 'system', g::text FROM generate_series(51, 120) g");
      await o.query("INSERT INTO audit_events (type, actor_type, reason) SELECT 'outer', 'system', g::text FROM generate_series(1, 5) g WHERE pg_temp.nested_audit(g)");
      await o.query("COMMIT");
    });
    const { rows } = await c.query<{ type: string; n: number }>("SELECT type, count(*)::int AS n FROM audit_events WHERE type IN ('multi', 'outer', 'nested') GROUP BY type ORDER BY type");
    expect(rows).toEqual([{ type: "multi", n: 120 }, { type: "nested", n: 5 }, { type: "outer", n: 5 }]);
    const head = await c.query<{ ok: boolean }>("SELECT h.seq = (SELECT max(seq) FROM audit_events) AND h.hash = (SELECT hash FROM audit_events ORDER BY seq DESC LIMIT 1) AS ok FROM audit_chain_head h");
    expect(head.rows[0]!.ok).toBe(true);
    expect(await verifyAuditChain(c, { checkpointKeys: [] })).toMatchObject({ ok: true });
  });
});

describe("the migration chains rows that already exist", () => {
  let t: TestDatabase;
  let dir: string;
  beforeAll(async () => {
    t = await createTestDatabase({ migrate: false });
    dir = await mkdtemp(path.join(tmpdir(), "bh-migrations-"));
    await cp(defaultMigrationsDir(), dir, { recursive: true });
    // The database as it was before the chain: every migration from the chain on is left out.
    for (const name of await readdir(dir)) if (name >= "20261125000300") await rm(path.join(dir, name), { recursive: true });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
    await t.drop();
  });

  it("in id order, and leaves the table append-only", async () => {
    await migrate(t.ownerUrl, dir);
    await withClient(t.ownerUrl, async (c) => {
      for (let i = 0; i < 25; i++) {
        await c.query("INSERT INTO audit_events (type, actor_type, reason, data, at) VALUES ($1, 'system', $2, $3::jsonb, now() - $4 * interval '1 minute')", [
          `old.${i}`,
          i % 3 === 0 ? null : `r|${i}`,
          JSON.stringify({ i, s: "é" }),
          25 - i,
        ]);
      }
    });
    await cp(path.join(defaultMigrationsDir(), "20261125000300_audit_hash_chain"), path.join(dir, "20261125000300_audit_hash_chain"), { recursive: true });
    expect((await migrate(t.ownerUrl, dir)).applied).toEqual(["20261125000300_audit_hash_chain"]);
    await withClient(t.ownerUrl, async (c) => {
      const { rows } = await c.query<{ seq: string }>("SELECT seq::text AS seq FROM audit_events ORDER BY audit_events.id");
      expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => String(i + 1)));
      const result = await verifyAuditChain(c, { checkpointKeys: [] });
      expect(result).toMatchObject({ ok: true, lastSeq: 25n, events: 25 });
      // New rows continue the same chain.
      await c.query("INSERT INTO audit_events (type, actor_type) VALUES ('new', 'system')");
      expect(await verifyAuditChain(c, { checkpointKeys: [] })).toMatchObject({ ok: true, lastSeq: 26n });
      await expect(c.query("UPDATE audit_events SET reason = 'x'")).rejects.toThrow(/append-only/);
      const { rows: triggers } = await c.query<{ tgname: string; tgenabled: string }>(
        "SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'audit_events'::regclass AND NOT tgisinternal ORDER BY tgname",
      );
      expect(triggers.every((tr) => tr.tgenabled === "O")).toBe(true);
    });
  });
});
