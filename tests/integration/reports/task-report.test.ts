import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Actor } from "@/lib/auth/actor";
import { recordAuditEvent } from "@/lib/audit/record";
import { auditCommand } from "@/cli/commands/audit";
import type { CliContext } from "@/cli/context";
import { generateMasterKey } from "@/lib/crypto/envelope";
import { deriveProcessKeys } from "@/lib/keys/process-keys";
import { generateTaskReport } from "@/lib/reports/generate";
import { pdfRow } from "@/lib/reports/pdf";
import { MAX_CONCURRENT_REPORTS, reportsBuilding } from "@/lib/reports/slots";
import { reportVerificationKey, verifyReport } from "@/lib/reports/signature";
import { loadTaskReport } from "@/lib/reports/task-report";
import { bulkProxyDecisions, insertEvents, proxyDecisions } from "../../support/audit-events";
import { createTestDatabase, databaseEnv, type TestDatabase } from "../../support/database";
import { makeUser } from "../../support/factories";
import { makeFleet } from "../audit/fleet";
import { withClient } from "../audit/helpers";

describe("per-task reports: content, signature, offline verification", () => {
  let t: TestDatabase;
  let dir: string;
  let auditor: Actor;
  let fleet: Awaited<ReturnType<typeof makeFleet>>;
  const reportKey = randomBytes(32);
  const keys = [reportVerificationKey(reportKey)];

  beforeAll(async () => {
    t = await createTestDatabase();
    dir = await mkdtemp(path.join(tmpdir(), "bh-report-"));
    const { user: owner } = await makeUser(t.db, "admin");
    auditor = (await makeUser(t.db, "auditor")).actor;
    fleet = await makeFleet(t.db, owner.id, 1, 2);
    const task = fleet.tasks[0]!;
    await recordAuditEvent(t.db, {
      type: "task.policy_changed",
      actor: { kind: "user", userId: owner.id, email: owner.email, role: "admin" },
      agentId: task.agentId,
      taskId: task.id,
      data: { fromVersion: 1, toVersion: 2, before: "rules: []\n", after: "rules:\n  - id: read-issues\n    service: github\n" },
    });
    const decisions = proxyDecisions({ agents: fleet.agents, tasks: [task] }, 300, { seed: 3 });
    // An agent-controlled URL full of characters a PDF font cannot show, and markup.
    decisions[0]!.data = { ...(decisions[0]!.data as object), url: "https://x.test/<script>alert(1)</script>\u202e\u0007\u4e2d" };
    await withClient(t.url, (c) => insertEvents(c, decisions));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
    await t.drop();
  });

  it("gathers every section, paginates decisions and verifies the chain range", async () => {
    const task = fleet.tasks[0]!;
    const report = await loadTaskReport(t.db, auditor, task.id, { checkpointKeys: null, perPage: 50, page: 2, outcome: "deny" });
    expect(report.agent.name).toBe(fleet.names.get(task.agentId));
    expect(report.policyVersions.map((v) => v.version)).toEqual([1, 2]);
    expect(report.policyVersions[1]!.diff!.filter((d) => d.op === "+").map((d) => d.text)).toContain("  - id: read-issues");
    expect(report.totalDecisions).toBe(300);
    expect(report.outcomes.reduce((s, o) => s + o.count, 0)).toBe(300);
    const denies = report.outcomes.find((o) => o.outcome === "deny")!.count;
    expect(report.decisions).toMatchObject({ outcome: "deny", page: 2, pages: Math.ceil(denies / 50) });
    expect(report.decisions.rows.every((r) => r.outcome === "deny")).toBe(true);
    expect(report.timeline!.buckets.reduce((s, b) => s + Object.values(b).reduce((x, y) => x + y, 0), 0)).toBe(300);
    expect(report.verification).toMatchObject({ events: 301, result: { ok: true } });
    // Another task's report holds none of these events; a made-up id is not found.
    expect((await loadTaskReport(t.db, auditor, fleet.tasks[1]!.id, { checkpointKeys: null })).totalDecisions).toBe(0);
    await expect(loadTaskReport(t.db, auditor, "00000000-0000-4000-8000-000000000000", { checkpointKeys: null })).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("signs the PDF; a changed byte, a truncated file, another key or another report's signature fail; generating is audited", async () => {
    const task = fleet.tasks[0]!;
    const g = await generateTaskReport(t.db, auditor, task.id, { checkpointKeys: null, reportKey, via: "api" });
    expect(g.pdf.subarray(0, 5).toString()).toBe("%PDF-");
    const sig = JSON.stringify(g.signature);
    expect(verifyReport(g.pdf, sig, keys)).toMatchObject({ ok: true, taskId: task.id });
    const flipped = Buffer.from(g.pdf);
    flipped[Math.floor(flipped.length / 2)]! ^= 1;
    expect(verifyReport(flipped, sig, keys)).toMatchObject({ ok: false, problem: expect.stringMatching(/changed/) });
    expect(verifyReport(g.pdf.subarray(0, g.pdf.length - 10), sig, keys)).toMatchObject({ ok: false });
    expect(verifyReport(g.pdf, sig, [reportVerificationKey(randomBytes(32))])).toMatchObject({ ok: false, problem: expect.stringMatching(/not among the trusted/) });
    // A genuine signature of another report does not vouch for this PDF, nor a re-labelled one.
    const other = await generateTaskReport(t.db, auditor, fleet.tasks[1]!.id, { checkpointKeys: null, reportKey, via: "api" });
    expect(verifyReport(g.pdf, JSON.stringify(other.signature), keys).ok).toBe(false);
    expect(verifyReport(g.pdf, JSON.stringify({ ...g.signature, taskId: fleet.tasks[1]!.id }), keys)).toMatchObject({ ok: false, problem: "the signature does not verify" });
    expect(verifyReport(g.pdf, "{", keys)).toMatchObject({ ok: false, problem: expect.stringMatching(/not JSON/) });
    const events = await t.db.auditEvent.findMany({ where: { type: "audit.report_generated", taskId: task.id } });
    expect(events).toHaveLength(1);
    expect(events[0]!.actorId).toBe((auditor as { userId: string }).userId);
    expect(events[0]!.data).toMatchObject({ via: "api", format: "pdf", sha256: g.signature.sha256, decisions: 300 });
    // Without a report key nothing is generated, and nothing is recorded.
    await expect(generateTaskReport(t.db, auditor, task.id, { checkpointKeys: null, reportKey: null, via: "api" })).rejects.toThrow(/no report key/);
  });

  it("builds at most MAX_CONCURRENT_REPORTS at once: one more is refused (429) and records nothing; a generated PDF takes one slot, not two", async () => {
    const task = fleet.tasks[0]!;
    expect(MAX_CONCURRENT_REPORTS).toBe(2);
    const before = await t.db.auditEvent.count({ where: { type: "audit.report_generated" } });
    // Two PDFs at once both finish (each holds one slot for its data and its drawing).
    const both = [generateTaskReport(t.db, auditor, task.id, { checkpointKeys: null, reportKey, via: "api" }), generateTaskReport(t.db, auditor, task.id, { checkpointKeys: null, reportKey, via: "api" })];
    expect(reportsBuilding()).toBe(2);
    // A third, of either kind, while they run: refused with the reason, before any work.
    const third = await generateTaskReport(t.db, auditor, task.id, { checkpointKeys: null, reportKey, via: "api" }).catch((e: unknown) => e);
    expect(third).toMatchObject({ code: "RATE_LIMITED", statusCode: 429, userMessage: expect.stringMatching(/2 task reports are being built/), details: { retryAfterSeconds: 10 } });
    await expect(loadTaskReport(t.db, auditor, task.id, { checkpointKeys: null })).rejects.toMatchObject({ code: "RATE_LIMITED" });
    const done = await Promise.all(both);
    expect(done.every((g) => g.pdf.subarray(0, 5).toString() === "%PDF-")).toBe(true);
    expect(reportsBuilding()).toBe(0);
    expect(await t.db.auditEvent.count({ where: { type: "audit.report_generated" } })).toBe(before + 2);
    // A failed build frees its slot too.
    await expect(loadTaskReport(t.db, auditor, "00000000-0000-4000-8000-000000000000", { checkpointKeys: null })).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect(reportsBuilding()).toBe(0);
    expect((await loadTaskReport(t.db, auditor, task.id, { checkpointKeys: null })).totalDecisions).toBe(300);
  });

  it("`bulkhead audit report` writes the PDF and its signature; `verify-report` checks them offline", async () => {
    const masterKey = generateMasterKey();
    const stdout: string[] = [];
    const ctx: CliContext = { json: false, stdout: (l) => stdout.push(l), stderr: () => undefined, stdinIsTTY: true, readStdin: async () => "" };
    const env = { ...databaseEnv(t), BULKHEAD_MASTER_KEY: masterKey, BULKHEAD_DATA_DIR: dir };
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    Object.assign(process.env, env);
    try {
      const file = path.join(dir, "report.pdf");
      expect(await auditCommand(["report", fleet.tasks[0]!.id, "--output", file], ctx)).toBe(0);
      expect(await auditCommand(["verify-report", file], ctx)).toBe(0);
      expect(stdout.at(-1)).toMatch(/^Report OK: .* task .* signed by brk_/);
      // Offline on another machine: only the public key, as the well-known document lists it.
      const publicKey = reportVerificationKey(deriveProcessKeys(Buffer.from(masterKey, "base64")).reportKey);
      const keysFile = path.join(dir, "keys.json");
      await writeFile(keysFile, JSON.stringify({ keys: [{ ...publicKey, use: "report" }] }));
      delete process.env.BULKHEAD_MASTER_KEY;
      process.env.BULKHEAD_DATA_DIR = path.join(dir, "elsewhere");
      expect(await auditCommand(["verify-report", file, "--keys", keysFile], ctx)).toBe(0);
      expect(await auditCommand(["verify-report", file], ctx)).toBe(1); // no trusted key at all
      const pdf = await readFile(file);
      pdf[pdf.length - 20]! ^= 0x20;
      const tampered = path.join(dir, "tampered.pdf");
      await writeFile(tampered, pdf);
      expect(await auditCommand(["verify-report", tampered, "--signature", `${file}.sig`, "--key", `${publicKey.keyId}:${publicKey.publicKey}`], ctx)).toBe(1);
      expect(stdout.at(-1)).toMatch(/^Report NOT VERIFIED: the PDF's SHA-256 differs/);
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it("draws decisions with 16 KiB URLs in moments, each row cut short, the event loop free meanwhile", async () => {
    // The agent chooses its URLs (up to the proxy's 16 KiB head; the audit keeps 16 KiB of a
    // string), and the PDF lists up to 2,000 of its decisions. Every row used to be drawn whole:
    // hundreds of wrapped lines of Courier (a character outside Latin-1 is drawn as a six-character
    // escape), up to 0.8 s of synchronous pdfkit per row, so opening the report of 2,000 such
    // decisions froze the dashboard for half an hour (no page served, no approval decided
    // meanwhile); the 300 here froze it for four minutes.
    const agentId = fleet.agents[0]!.id;
    const task = await t.db.task.create({ data: { agentId, purpose: "long urls", policyYaml: "rules: []\n", expiresAt: new Date(Date.now() + 3600_000) } });
    const decisions = proxyDecisions({ agents: fleet.agents, tasks: [{ id: task.id, agentId }] }, 300, { seed: 9 });
    for (const [i, d] of decisions.entries()) {
      const data = d.data as Record<string, unknown>;
      d.data = { ...data, url: `https://api.github.com/repos/acme/app/issues?${i}=${"%E4%B8%AD".repeat(16 * 1024 / 9)}` };
      d.reason = `${d.reason ?? ""} ${"\u4e2d".repeat(4000)}`;
    }
    await withClient(t.url, (c) => insertEvents(c, decisions));
    let longestStall = 0;
    let last = Date.now();
    const ticker = setInterval(() => {
      longestStall = Math.max(longestStall, Date.now() - last);
      last = Date.now();
    }, 50);
    const started = Date.now();
    try {
      const g = await generateTaskReport(t.db, auditor, task.id, { checkpointKeys: null, reportKey, via: "api" });
      expect(g.report.decisions.rows).toHaveLength(300);
      expect(verifyReport(g.pdf, JSON.stringify(g.signature), keys).ok).toBe(true);
      expect(g.pdf.length).toBeLessThan(8 * 1024 * 1024);
    } finally {
      clearInterval(ticker);
    }
    expect(Date.now() - started).toBeLessThan(15_000);
    // Drawn whole, the rows blocked it for minutes; the PDF's own synchronous steps (the final
    // write-out, signing) take a second or two on a loaded 2-core machine, which the bound allows.
    expect(longestStall, "the longest time the event loop was blocked").toBeLessThan(5_000);
    // What a row keeps: the first 400 characters as drawn (an escape counts as six, and is never cut).
    expect(pdfRow("a".repeat(500))).toBe(`${"a".repeat(400)}...[100 more characters]`);
    expect(pdfRow(`${"a".repeat(397)}\u4e2dbc`)).toBe(`${"a".repeat(397)}...[3 more characters]`);
    expect(pdfRow("\u202eok", 40)).toBe("\\u202eok");
  }, 240_000);

  it("generates the report of a 100,000-event task within a minute", async () => {
    const task = fleet.tasks[1]!;
    await withClient(t.url, (c) => bulkProxyDecisions(c, { agents: fleet.agents, tasks: [task] }, 100_000, { chunk: 25_000 }));
    const started = Date.now();
    const g = await generateTaskReport(t.db, auditor, task.id, { checkpointKeys: null, reportKey, via: "api" });
    const ms = Date.now() - started;
    expect(g.report.totalDecisions).toBe(100_000);
    expect(g.report.decisions.rows).toHaveLength(2_000);
    expect(verifyReport(g.pdf, JSON.stringify(g.signature), keys).ok).toBe(true);
    expect(ms).toBeLessThan(60_000);
  }, 240_000);
});
