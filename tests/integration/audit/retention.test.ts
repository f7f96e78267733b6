import { createHash } from "node:crypto";
import { chmod, mkdtemp, readdir, readFile, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { chainStatus } from "@/lib/audit/chain-status";
import { eventHash } from "@/lib/audit/chain";
import { startAuditExport } from "@/lib/audit/export";
import { DirectoryCheckpointSink, checkpointFileName } from "@/lib/audit/outside/directory";
import { loadSignerKey, type SignerKey } from "@/lib/audit/outside/signer-key";
import { signCheckpointRound } from "@/lib/audit/outside/signer";
import { verifyWithOutside } from "@/lib/audit/outside/verify-outside";
import { searchAuditEvents } from "@/lib/audit/query";
import { manifestFileName } from "@/lib/audit/retention/archive-format";
import { verifyArchiveFile } from "@/lib/audit/retention/archive-file";
import { runAuditRetention, type RunRetentionOptions } from "@/lib/audit/retention/run";
import { verifyAuditChain } from "@/lib/audit/verify";
import { loadAuditRetentionConfig } from "@/lib/config/audit-retention";
import { createPrismaClient, type Db } from "@/lib/db/client";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { tamper, withClient } from "./helpers";

const DAY = 24 * 3600_000;
const OLD = new Date(Date.now() - 40 * DAY);

/**
 * Retention removes only whole segments that end at a checkpoint published outside the database,
 * archives and re-verifies them first, and leaves a marker the verifier starts from. The attacker
 * is a runtime role (cannot delete, call the removal or forge a marker) or the owner deleting rows
 * without going through retention (reported as tampering).
 */
describe("audit retention", () => {
  let t: TestDatabase;
  let owner: Db;
  let dir: string;
  let archiveDir: string;
  let sink: DirectoryCheckpointSink;
  let key: SignerKey;

  const insert = (n: number, at: Date, tag = "old") =>
    withClient(t.url, async (c) => {
      for (let i = 0; i < n; i++) {
        await c.query("INSERT INTO audit_events (at, type, actor_type, actor_id, reason, data) VALUES ($1, 'test.event', 'system', 'test', $2, $3)", [at, `${tag} ${i}`, { i, tag }]);
      }
    });
  const round = () => signCheckpointRound({ db: t.db, key, sink });
  const run = (extra: Partial<RunRetentionOptions> = {}) =>
    runAuditRetention({ db: owner, sink, keys: [key.publicKey], signerKey: key.seed, retentionDays: 30, archiveDir, performedBy: "test", ...extra });
  const seqs = async () => (await t.db.auditEvent.findMany({ select: { seq: true }, orderBy: { seq: "asc" } })).map((e) => Number(e.seq));
  const verify = () => verifyWithOutside(t.db, { keys: [key.publicKey], sink });

  beforeEach(async () => {
    t = await createTestDatabase();
    owner = createPrismaClient(t.ownerUrl, 2);
    dir = await mkdtemp(path.join(tmpdir(), "bh-retention-"));
    archiveDir = path.join(dir, "archive");
    sink = new DirectoryCheckpointSink(path.join(dir, "checkpoints"));
    key = loadSignerKey(path.join(dir, "signer.key"), { create: true })!;
    // Checkpoint 1 at seq 5, 2 at seq 10 (all old); 11-13 old without a checkpoint; 14-15 new, checkpoint 3 at 15.
    await insert(5, OLD);
    await round();
    await insert(5, OLD);
    await round();
    await insert(3, OLD);
    await insert(2, new Date(), "new");
    await round();
  });
  afterEach(async () => {
    await owner.$disconnect();
    await rm(dir, { recursive: true, force: true });
    await t.drop();
  });

  it("is off by default and then removes nothing", async () => {
    const config = loadAuditRetentionConfig(dir, {});
    expect(config.retentionDays).toBeNull();
    expect(config.archiveDir).toBe(path.join(dir, "audit-archive"));
    expect(loadAuditRetentionConfig(dir, { BULKHEAD_AUDIT_RETENTION_DAYS: "0" }).retentionDays).toBeNull();
    expect(await run({ retentionDays: config.retentionDays })).toEqual({ state: "off" });
    expect(await seqs()).toHaveLength(15);
  });

  it("a dry run says what it would remove and writes and removes nothing", async () => {
    const r = await run({ dryRun: true });
    expect(r).toMatchObject({ state: "planned", plan: { fromSeq: 1n, throughSeq: 10n, events: 10n, checkpoint: { chain: { number: 2n } } } });
    expect(await seqs()).toHaveLength(15);
    await expect(readdir(archiveDir)).rejects.toThrow(/ENOENT/);
  });

  it("archives, re-verifies and removes exactly the whole segment up to the newest eligible checkpoint; the chain verifies from the marker", async () => {
    const stored = await withClient(t.url, async (c) => (await c.query<{ seq: string; recorded_at: Date }>("SELECT seq::text, recorded_at FROM audit_events WHERE seq <= 10 ORDER BY audit_events.seq")).rows);
    const r = await run();
    expect(r.state).toBe("removed");
    if (r.state !== "removed") return;
    expect(r.removed).toBe(10n);
    expect(r.archive.reused).toBe(false);
    // 11-13 are old but no checkpoint ends there; 14-15 are newer than the period. 16 is the retention event.
    expect(await seqs()).toEqual([11, 12, 13, 14, 15, 16]);
    const event = await t.db.auditEvent.findFirst({ where: { seq: 16n } });
    expect(event).toMatchObject({ type: "audit.retention", actorType: "system", actorId: "test" });
    expect(event!.data).toMatchObject({ removedFromSeq: "1", throughSeq: "10", firstKeptSeq: "11", events: "10", checkpointNumber: "2", archiveSha256: r.archive.sha256 });
    const [marker] = await withClient(t.url, async (c) => (await c.query("SELECT first_kept_seq::text, anchor_hash, checkpoint_number::text, archive_sha256 FROM audit_retention")).rows);
    expect(marker).toMatchObject({ first_kept_seq: "11", checkpoint_number: "2", archive_sha256: r.archive.sha256 });
    // Checkpoints are kept.
    expect(await t.db.auditCheckpoint.count()).toBe(3);

    const archive = await verifyArchiveFile(r.archive.file, [key.publicKey]);
    expect(archive).toMatchObject({ ok: true, events: 10, checkpoints: 2, problems: [], manifestSigned: true, unsignedParts: [] });
    expect(archive.header?.version).toBe(2);
    expect(archive.manifest).toMatchObject({ version: 2, keyId: key.publicKey.keyId });
    const lines = (await readFile(r.archive.file, "utf8")).trim().split("\n").map((l) => JSON.parse(l));
    expect(lines[1]).toMatchObject({ kind: "event", seq: "1", prevHash: "0".repeat(64), reason: "old 0", dataText: '{"i": 0, "tag": "old"}' });
    // The time PostgreSQL stored each row goes with it, beside the (older) time it claims.
    const archived = lines.filter((l) => l.kind === "event");
    expect(archived.map((l) => [l.seq, l.recordedAt])).toEqual(stored.map((s) => [s.seq, s.recorded_at.toISOString()]));
    expect(Date.parse(archived[0].recordedAt)).toBeGreaterThan(Date.parse(archived[0].at));

    const full = await verify();
    expect(full.ok).toBe(true);
    expect(full.chain).toMatchObject({ ok: true, lastSeq: 16n, events: 6, retention: { firstKeptSeq: 11n, checkpointNumber: 2n, archivedCheckpoints: 2 } });
    expect(full.outside).toMatchObject({ ok: true, findings: [], archived: 2 });
    const status = await chainStatus(t.db, { checkpointKeys: [key.publicKey], force: true, waitMs: 60_000 });
    expect(status).toMatchObject({ state: "verified", verifiedThroughSeq: "16", retained: { firstKeptSeq: "11", checkpointNumber: "2", archivedCheckpoints: 2 } });

    // The signer goes on from the kept chain, and a second run finds nothing new to remove.
    expect((await round()).signed).not.toBeNull();
    expect(await run()).toMatchObject({ state: "nothing" });
    expect((await verify()).ok).toBe(true);
  });

  it("never removes an event newer than the period, nor the segment around it", async () => {
    // An event inside segment 2 is young: only segment 1 is eligible.
    await tamper(t.adminUrl, "UPDATE audit_events SET at = now() WHERE seq = 7; UPDATE audit_events SET hash = audit_event_hash(seq, prev_hash, at, type, actor_type, actor_id, agent_id, task_id, outcome, effect, reason, rule_id, data) WHERE seq = 7");
    const young = await run({ dryRun: true });
    expect(young).toMatchObject({ state: "planned", plan: { throughSeq: 5n } });
  });

  it("uses only checkpoints that are published outside", async () => {
    await chmod(sink.dir, 0o700);
    await unlink(path.join(sink.dir, checkpointFileName(2n)));
    expect(await run({ dryRun: true })).toMatchObject({ state: "planned", plan: { throughSeq: 5n, checkpoint: { chain: { number: 1n } } } });
    await unlink(path.join(sink.dir, checkpointFileName(1n)));
    await unlink(path.join(sink.dir, checkpointFileName(3n)));
    expect(await run()).toMatchObject({ state: "nothing" });
    expect(await seqs()).toHaveLength(15);
  });

  it("verify-archive detects a changed archive, even with the manifest and hashes recomputed", async () => {
    const r = await run();
    if (r.state !== "removed") throw new Error("expected a removal");
    const text = await readFile(r.archive.file, "utf8");
    const copy = path.join(dir, "copy.jsonl");
    const save = async (body: string, manifest?: object) => {
      await writeFile(copy, body);
      const m = JSON.parse(await readFile(r.archive.manifestFile, "utf8"));
      await writeFile(manifestFileName(copy), JSON.stringify(manifest ? { ...m, ...manifest } : m));
    };
    const sha = (s: string) => createHash("sha256").update(s).digest("hex");

    await save(text);
    expect((await verifyArchiveFile(copy, [key.publicKey])).ok).toBe(true);

    // A changed reason: the digest and the event's hash both fail.
    await save(text.replace('"reason":"old 3"', '"reason":"old 9"'));
    const edited = await verifyArchiveFile(copy, [key.publicKey]);
    expect(edited.ok).toBe(false);
    expect(edited.problems.join("\n")).toMatch(/SHA-256 .* the archive was changed/);
    expect(edited.problems.join("\n")).toMatch(/event 4's content does not match its hash/);

    // The attacker rewrites an event, recomputes every hash after it and the manifest: the signed checkpoint does not match.
    const lines = text.trim().split("\n").map((l) => JSON.parse(l));
    let prev = lines[1].prevHash as string;
    for (const line of lines.slice(1)) {
      if (line.kind !== "event") break;
      if (line.seq === "4") line.reason = "nothing happened";
      line.prevHash = prev;
      line.hash = eventHash({ ...line, seq: BigInt(line.seq), at: new Date(line.at) });
      prev = line.hash;
    }
    const forged = `${lines.map((l) => JSON.stringify(l)).join("\n")}\n`;
    await save(forged, { sha256: sha(forged), size: Buffer.byteLength(forged) });
    const rechained = await verifyArchiveFile(copy, [key.publicKey]);
    expect(rechained.ok).toBe(false);
    expect(rechained.problems.join("\n")).toMatch(/not the archived event's/);

    // A dropped line, and a key that did not sign it.
    const dropped = text.split("\n").filter((l) => !l.includes('"seq":"6"')).join("\n");
    await save(dropped, { sha256: sha(dropped), size: Buffer.byteLength(dropped) });
    expect((await verifyArchiveFile(copy, [key.publicKey])).problems.join("\n")).toMatch(/event 6 is missing/);
    const other = loadSignerKey(path.join(dir, "other.key"), { create: true })!;
    expect((await verifyArchiveFile(r.archive.file, [other.publicKey])).problems.join("\n")).toMatch(/not signed by a trusted checkpoint key/);
    // No manifest: not verified.
    await unlink(manifestFileName(copy));
    expect((await verifyArchiveFile(copy, [key.publicKey])).ok).toBe(false);
  });

  it("verify-archive refuses every manipulation of a written archive, with the manifest's digest, size and segment recomputed", async () => {
    const r = await run();
    if (r.state !== "removed") throw new Error("expected a removal");
    const text = await readFile(r.archive.file, "utf8");
    const manifest = JSON.parse(await readFile(r.archive.manifestFile, "utf8"));
    const copy = path.join(dir, "copy.jsonl");
    // Lines: 0 header, 1-10 events 1-10, 11 checkpoint 1 (seq 5), 12 checkpoint 2 (seq 10).
    const l = text.split("\n").slice(0, -1);
    const join = (ls: string[]) => `${ls.join("\n")}\n`;
    const cpAt5 = JSON.parse(l[11]!);
    const cut = join([JSON.stringify({ ...JSON.parse(l[0]!), throughSeq: "5", events: "5", checkpoint: { number: cpAt5.number, seq: "5", hash: cpAt5.hash, keyId: cpAt5.keyId } }), ...l.slice(1, 6), l[11]!]);
    const cases: Array<[string, string, RegExp]> = [
      ["a changed recordedAt", text.replace(/"recordedAt":"[^"]*"/, '"recordedAt":"2020-01-01T00:00:00.000Z"'), /manifest's signature .* does not verify/],
      ["an added field", text.replace('"reason":"old 2"', '"reason":"old 2","note":"approved by alice"'), /has field\(s\) an archive does not have: note/],
      ["a duplicated checkpoint", join([...l.slice(0, 12), l[11]!, l[12]!]), /checkpoint 1 appears twice/],
      ["a blank line", join([...l.slice(0, 4), "", ...l.slice(4)]), /line 5 is blank/],
      ["the tail cut back to checkpoint 1, the header's range fixed", cut, /manifest's signature .* does not verify/],
      // Already caught by the chain and the checkpoints, and still.
      ["one changed byte", text.replace('"reason":"old 4"', '"reason":"old 5"'), /event 5's content does not match its hash/],
      ["an edited reason", text.replace('"reason":"old 3"', '"reason":"nothing happened"'), /event 4's content does not match its hash/],
      ["two events swapped", join([l[0]!, l[2]!, l[1]!, ...l.slice(3)]), /event 1 is missing/],
      ["the last event dropped", join([...l.slice(0, 10), ...l.slice(11)]), /the archive ends at seq 9, not at seq 10/],
      ["the final checkpoint dropped", join(l.slice(0, 12)), /the segment's checkpoint 2 is not in the archive/],
      ["a changed key id", text.replaceAll(key.publicKey.keyId, "ack_0000000000000000"), /not signed by a trusted checkpoint key/],
      ["an extra line", join([...l, l[3]!]), /event 3 after the checkpoints/],
    ];
    for (const [name, body, problem] of cases) {
      expect(body, name).not.toBe(text);
      const h = JSON.parse(body.split("\n")[0]!);
      await writeFile(copy, body);
      const sha256 = createHash("sha256").update(body).digest("hex");
      const segment = { fromSeq: h.fromSeq, throughSeq: h.throughSeq, events: h.events, anchorPrevHash: h.anchorPrevHash, checkpoint: h.checkpoint };
      await writeFile(manifestFileName(copy), JSON.stringify({ ...manifest, sha256, size: Buffer.byteLength(body), ...segment }));
      const result = await verifyArchiveFile(copy, [key.publicKey]);
      expect(result.ok, name).toBe(false);
      expect(result.problems.join("\n"), name).toMatch(problem);
    }
  });

  it("archives nothing and removes nothing without the signer's key to sign the manifest with", async () => {
    await expect(run({ signerKey: null })).rejects.toThrow(/refusing to archive: an archive's manifest is signed with the checkpoint signer's key/);
    expect(await seqs()).toHaveLength(15);
    expect(await run({ signerKey: null, dryRun: true })).toMatchObject({ state: "planned" });
  });

  it("runtime roles cannot delete audit rows, call the removal, or forge or change a marker", async () => {
    const r = await run();
    expect(r.state).toBe("removed");
    for (const url of [t.url, t.workerUrl]) {
      await withClient(url, async (c) => {
        await expect(c.query("DELETE FROM audit_events WHERE seq = 11")).rejects.toThrow(/permission denied/);
        await expect(c.query("TRUNCATE audit_events")).rejects.toThrow(/permission denied/);
        await expect(c.query("SELECT audit_apply_retention(15, 3, 'x.jsonl', repeat('0', 64), 'attacker')")).rejects.toThrow(/permission denied/);
        await expect(c.query("INSERT INTO audit_retention (removed_from_seq, first_kept_seq, anchor_hash, checkpoint_number, events_removed, archive_file, archive_sha256, performed_by) VALUES (11, 16, 'x', 3, 5, 'x', 'x', 'attacker')")).rejects.toThrow(/permission denied/);
        await expect(c.query("UPDATE audit_retention SET first_kept_seq = 1")).rejects.toThrow(/permission denied/);
        await expect(c.query("DELETE FROM audit_retention")).rejects.toThrow(/permission denied/);
        // The setting the trigger looks at is settable by anyone, and useless without being the owner.
        await c.query("BEGIN");
        await c.query("SELECT set_config('bulkhead.audit_retention', txid_current()::text, true)");
        await expect(c.query("DELETE FROM audit_events WHERE seq = 11")).rejects.toThrow(/permission denied/);
        await c.query("ROLLBACK");
      });
    }
    // The owner's own plain DELETE is still refused by the trigger (outside audit_apply_retention).
    await withClient(t.ownerUrl, async (c) => {
      await expect(c.query("DELETE FROM audit_events WHERE seq = 11")).rejects.toThrow(/append-only/);
      await expect(c.query("UPDATE audit_events SET reason = 'x' WHERE seq = 11")).rejects.toThrow(/append-only/);
      await expect(c.query("DELETE FROM audit_retention")).rejects.toThrow(/append-only/);
      // The removal refuses a seq that is not its checkpoint's, and a checkpoint whose event was changed.
      await expect(c.query("SELECT audit_apply_retention(14, 3, 'x.jsonl', repeat('0', 64), 'owner')")).rejects.toThrow(/not at seq 14/);
    });
    expect(await seqs()).toEqual([11, 12, 13, 14, 15, 16]);
    expect((await verify()).ok).toBe(true);
  });

  it("reports rows deleted by the owner without retention as tampering, at the start and after a marker", async () => {
    await tamper(t.ownerUrl, "DELETE FROM audit_events WHERE seq <= 5");
    const first = await verify();
    expect(first.chain).toMatchObject({ ok: false, problem: "deleted_or_gap", firstBadSeq: 1n });
    expect(first.outside!.findings.map((f) => f.kind)).toContain("events_missing");
    // Retention refuses to work on a log that does not start where it should.
    await expect(run()).rejects.toThrow(/starts at seq 6/);
  });

  it("reports a deletion past the marker without a new marker as tampering", async () => {
    await run();
    await tamper(t.ownerUrl, "DELETE FROM audit_events WHERE seq IN (11, 12)");
    expect((await verify()).chain).toMatchObject({ ok: false, problem: "deleted_or_gap", firstBadSeq: 11n });
  });

  it("does not believe a marker the owner wrote by hand that is not anchored on its checkpoint", async () => {
    await tamper(t.ownerUrl, `DELETE FROM audit_events WHERE seq <= 7;
      INSERT INTO audit_retention (removed_from_seq, first_kept_seq, anchor_hash, checkpoint_number, events_removed, archive_file, archive_sha256, performed_by)
      VALUES (1, 8, (SELECT hash FROM audit_events WHERE seq = 10), 2, 7, 'forged.jsonl', repeat('0', 64), 'attacker')`);
    const r = await verify();
    expect(r.chain).toMatchObject({ ok: false, problem: "checkpoint_mismatch", firstBadSeq: 7n });
  });

  it("an interrupted run (archive written, nothing removed) is safe to run again", async () => {
    // The dashboard's role writes the archive but cannot remove anything: as if the run stopped there.
    await expect(run({ db: t.db })).rejects.toThrow(/permission denied/);
    expect(await seqs()).toHaveLength(15);
    const files = await readdir(archiveDir);
    expect(files.sort()).toEqual(["audit-00000000000000000001-00000000000000000010.jsonl", "audit-00000000000000000001-00000000000000000010.jsonl.manifest.json"]);
    const again = await run();
    expect(again).toMatchObject({ state: "removed", removed: 10n, archive: { reused: true } });
    expect(await seqs()).toEqual([11, 12, 13, 14, 15, 16]);
    expect(await run()).toMatchObject({ state: "nothing" });
    expect((await verify()).ok).toBe(true);
  });

  it("search and export still work after retention", async () => {
    await run();
    const page = await searchAuditEvents(t.db, { q: "new", limit: 50 });
    expect(page.events.map((e) => e.seq).sort()).toEqual(["14", "15"]);
    const all = await searchAuditEvents(t.db, { limit: 50 });
    expect(all.events).toHaveLength(6);
    const exp = await startAuditExport(t.db, { kind: "system", label: "test" }, { format: "jsonl" }, { via: "cli" });
    let body = "";
    for await (const chunk of exp.chunks) body += chunk;
    expect(body.trim().split("\n").map((l) => JSON.parse(l).seq)).toEqual(["11", "12", "13", "14", "15", "16"]);
    expect((await verifyAuditChain(t.db, { checkpointKeys: [key.publicKey] })).ok).toBe(true);
  });
});
