import { chmod, mkdtemp, readdir, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { signChainedCheckpoint } from "@/lib/audit/checkpoints";
import { DirectoryCheckpointSink, checkpointFileName } from "@/lib/audit/outside/directory";
import { loadSignerKey, type SignerKey } from "@/lib/audit/outside/signer-key";
import { signCheckpointRound } from "@/lib/audit/outside/signer";
import { verifyWithOutside } from "@/lib/audit/outside/verify-outside";
import { recordAuditEvent } from "@/lib/audit/record";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { tamper, withClient } from "./helpers";

/**
 * The attacker is the database's owner (or a superuser): audit triggers off, rows and
 * checkpoints deleted or rewritten at will, the chain recomputed with the database's own hash
 * function. What it does not have is the signer's key or write access to the published folder.
 * `verifyWithOutside` must name what was done.
 */
const HASH_ARGS = "seq, prev_hash, at, type, actor_type, actor_id, agent_id, task_id, outcome, effect, reason, rule_id, data";
const RECHAIN = (from: number) => `
DO $$ DECLARE r record; h text; BEGIN
  SELECT hash INTO h FROM audit_events WHERE seq = ${from - 1};
  FOR r IN SELECT id, seq FROM audit_events WHERE seq >= ${from} ORDER BY seq LOOP
    UPDATE audit_events SET prev_hash = h WHERE id = r.id;
    UPDATE audit_events SET hash = audit_event_hash(${HASH_ARGS}) WHERE id = r.id RETURNING hash INTO h;
  END LOOP;
  UPDATE audit_chain_head SET seq = (SELECT max(seq) FROM audit_events), hash = h;
END $$;`;

describe("checkpoints published outside the database", () => {
  let t: TestDatabase;
  let dir: string;
  let sink: DirectoryCheckpointSink;
  let key: SignerKey;

  const record = async (n: number) => {
    for (let i = 0; i < n; i++) await recordAuditEvent(t.db, { type: "test.event", actor: { actorType: "system", actorId: "test" }, data: { i } });
  };
  const round = () => signCheckpointRound({ db: t.db, key, sink });
  const verify = () => verifyWithOutside(t.db, { keys: [key.publicKey], sink });
  const kinds = async () => (await verify()).outside!.findings.map((f) => f.kind);

  beforeEach(async () => {
    t = await createTestDatabase();
    dir = await mkdtemp(path.join(tmpdir(), "bh-outside-"));
    sink = new DirectoryCheckpointSink(path.join(dir, "checkpoints"));
    key = loadSignerKey(path.join(dir, "signer.key"), { create: true })!;
    // Three checkpoints: at seq 5, 10 and 15.
    for (let i = 0; i < 3; i++) {
      await record(5);
      expect((await round()).signed).not.toBeNull();
    }
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
    await t.drop();
  });

  it("chains checkpoints, publishes each once, read-only, and verifies clean", async () => {
    expect((await round()).signed).toBeNull(); // the head did not move
    const files = (await readdir(sink.dir)).sort();
    expect(files).toEqual([1n, 2n, 3n].map(checkpointFileName));
    const { checkpoints } = await sink.readAll();
    expect(checkpoints.map((c) => [c.checkpoint.chain.number, c.checkpoint.seq])).toEqual([[1n, 5n], [2n, 10n], [3n, 15n]]);
    expect(checkpoints[1]!.checkpoint.chain.prevSignature).toBe(checkpoints[0]!.checkpoint.signature);
    const result = await verify();
    expect(result).toMatchObject({ ok: true, chain: { ok: true, lastSeq: 15n, checkpoints: 3 }, outside: { ok: true, trusted: 3, findings: [] } });
    await expect(sink.publish(checkpoints[0]!.checkpoint)).rejects.toThrow(/exists already/);
  });

  it("with the signer key lost and a new one made, refuses and names the key to restore; the old key signs again", async () => {
    await record(2);
    const stranger = loadSignerKey(path.join(dir, "new-signer.key"), { create: true })!;
    const attempt = signCheckpointRound({ db: t.db, key: stranger, sink });
    await expect(attempt).rejects.toThrow(`is not signed by this signer's key ${stranger.publicKey.keyId} but names ${key.publicKey.keyId}; restore the signer key file that holds ${key.publicKey.keyId}`);
    expect((await readdir(sink.dir)).length).toBe(3);
    expect((await round()).signed?.chain?.number).toBe(4n);
  });

  it("names a dropped tail when the owner deletes the tail, moves the head back and deletes the checkpoints covering it", async () => {
    await tamper(t.adminUrl, `DELETE FROM audit_events WHERE seq > 7;
      UPDATE audit_chain_head SET seq = 7, hash = (SELECT hash FROM audit_events WHERE seq = 7);
      DELETE FROM audit_checkpoints WHERE seq > 7`);
    const result = await verify();
    expect(result.ok).toBe(false);
    expect(result.chain).toMatchObject({ ok: false, problem: "truncated", firstBadSeq: 8n });
    const findings = result.outside!.findings;
    expect(findings.map((f) => f.kind)).toEqual(expect.arrayContaining(["dropped_tail", "checkpoint_deleted"]));
    expect(findings.find((f) => f.kind === "dropped_tail")!.detail).toMatch(/ends at seq 7: events 8-15 were dropped/);
    // The signer refuses to vouch for the cut chain.
    await record(3);
    await expect(round()).rejects.toThrow(/refusing to sign: event 15, signed by checkpoint 3, is gone/);
  });

  it("names a recomputed chain, which the database alone cannot show once its checkpoints are gone", async () => {
    await tamper(t.adminUrl, `UPDATE audit_events SET data = '{"i": "forged"}' WHERE seq = 3; ${RECHAIN(3)}; DELETE FROM audit_checkpoints`);
    const result = await verify();
    expect(result.chain).toMatchObject({ ok: false, problem: "checkpoint_mismatch" });
    expect(result.outside!.findings.map((f) => f.kind)).toEqual(expect.arrayContaining(["recomputed_chain", "checkpoint_deleted"]));
    expect(result.outside!.findings.find((f) => f.kind === "recomputed_chain")).toMatchObject({ seq: 5n });
    await expect(round()).rejects.toThrow(/has another hash \(the chain was rewritten\)/);
  });

  it("names a checkpoint deleted from the middle of the database, with or without the outside copy", async () => {
    await tamper(t.adminUrl, "DELETE FROM audit_checkpoints WHERE number = 2");
    expect(await kinds()).toEqual(["checkpoint_deleted"]);
    // The database on its own still shows the hole: checkpoint 3 links to a signature nobody
    // stores (and an empty folder means none of them was published there).
    const dbOnly = await verifyWithOutside(t.db, { keys: [key.publicKey], sink: new DirectoryCheckpointSink(path.join(dir, "elsewhere")) });
    expect(dbOnly.outside!.findings.map((f) => f.kind)).toEqual(["publication_gap", "publication_gap", "checkpoint_deleted"]);
  });

  it("names reordered and altered checkpoints in the database", async () => {
    // Swap the storage order of 2 and 3 (delete and re-insert them the other way round).
    await tamper(t.adminUrl, `CREATE TEMP TABLE cp AS SELECT * FROM audit_checkpoints WHERE number IN (2, 3);
      DELETE FROM audit_checkpoints WHERE number IN (2, 3);
      INSERT INTO audit_checkpoints (seq, hash, key_id, signature, number, prev_signature, signed_at, created_at)
        SELECT seq, hash, key_id, signature, number, prev_signature, signed_at, created_at FROM cp ORDER BY number DESC`);
    expect(await kinds()).toEqual(["checkpoint_reordered"]);
    await tamper(t.adminUrl, "UPDATE audit_checkpoints SET seq = 4, hash = (SELECT hash FROM audit_events WHERE seq = 4) WHERE number = 1");
    expect(await kinds()).toEqual(expect.arrayContaining(["checkpoint_altered", "checkpoint_reordered"]));
  });

  it("names a gap in publication and a corrupted outside file, and never trusts the corrupted file", async () => {
    await unlink(path.join(sink.dir, checkpointFileName(2n)));
    const gap = await verify();
    // Seen from both sides: missing outside, and in the database without a published copy.
    expect(gap.outside!.findings.map((f) => f.kind)).toEqual(["publication_gap", "publication_gap"]);
    expect(gap.outside!.findings[0]!.detail).toMatch(/checkpoint\(s\) 2 are missing outside/);
    expect(gap.outside!.findings[1]!.detail).toMatch(/checkpoint 2 is in the database but was never published/);

    // Checkpoint 3's file rewritten to vouch for a forged hash: it no longer verifies.
    const third = path.join(sink.dir, checkpointFileName(3n));
    await chmod(third, 0o644);
    const forged = signChainedCheckpoint(Buffer.alloc(32, 1), 15n, "ab".repeat(32), { number: 3n, signedAt: new Date(), prevSignature: "x".repeat(86) });
    const doc = { format: "bulkhead-audit-checkpoint", version: 2, number: "3", seq: "15", hash: forged.hash, signedAt: forged.chain!.signedAt.toISOString(), prevSignature: forged.chain!.prevSignature, keyId: key.publicKey.keyId, signature: forged.signature };
    await writeFile(third, JSON.stringify(doc));
    await writeFile(path.join(sink.dir, checkpointFileName(4n)), "{ not json");
    const result = await verify();
    const corrupt = result.outside!.findings.filter((f) => f.kind === "corrupt_outside_file");
    expect(corrupt.map((f) => f.number)).toEqual([4n, 3n]);
    expect(corrupt[0]!.detail).toMatch(/not JSON; not trusted/);
    expect(corrupt[1]!.detail).toMatch(/does not verify .* not trusted/);
    // Untrusted files are not used against the chain: it verifies against the good one (1) alone.
    expect(result.chain).toMatchObject({ ok: true });
    // And the signer will not build on a file it cannot read.
    await record(1);
    await expect(round()).rejects.toThrow(/newest published checkpoint .* is unreadable: not JSON/);
  });

  it("finds an inserted forged checkpoint and one the database holds that was never published", async () => {
    const other = signChainedCheckpoint(Buffer.alloc(32, 2), 15n, "cd".repeat(32), { number: 4n, signedAt: new Date(), prevSignature: "y".repeat(86) });
    await withClient(t.url, (c) =>
      c.query("INSERT INTO audit_checkpoints (seq, hash, key_id, signature, number, prev_signature, signed_at) VALUES (15, $1, $2, $3, 4, $4, now())", [other.hash, key.publicKey.keyId, other.signature, other.chain!.prevSignature]),
    );
    const result = await verify();
    expect(result.ok).toBe(false);
    expect(result.outside!.findings.map((f) => f.kind)).toEqual(expect.arrayContaining(["checkpoint_altered"]));
    expect(result.chain).toMatchObject({ ok: false, problem: "checkpoint_mismatch" });
  });
});
