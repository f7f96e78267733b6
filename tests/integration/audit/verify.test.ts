import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { checkpointVerificationKey, signCheckpoint, writeCheckpoint } from "@/lib/audit/checkpoints";
import { recordAuditEvent } from "@/lib/audit/record";
import { verifyAuditChain, type VerifyAuditChainOptions } from "@/lib/audit/verify";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { tamper, withClient } from "./helpers";

/**
 * The attacker's side: tampering as the table owner, who can switch the append-only and chain
 * triggers off. The verifier must name the first bad event and what happened to it; what it
 * cannot see without signed checkpoints (a cut tail with the head moved back) is shown too.
 */
const master = randomBytes(32);
const keys = { checkpointKeys: [checkpointVerificationKey(master)] } satisfies VerifyAuditChainOptions;
const HASH_ARGS = "seq, prev_hash, at, type, actor_type, actor_id, agent_id, task_id, outcome, effect, reason, rule_id, data";

/** Recomputes prev_hash/hash from `seq` on, as a competent forger would, and moves the head. */
const RECHAIN = (from: number) => `
DO $$ DECLARE r record; h text; BEGIN
  SELECT hash INTO h FROM audit_events WHERE seq = ${from - 1};
  FOR r IN SELECT id, seq FROM audit_events WHERE seq >= ${from} ORDER BY seq LOOP
    UPDATE audit_events SET prev_hash = h WHERE id = r.id;
    UPDATE audit_events SET hash = audit_event_hash(${HASH_ARGS}) WHERE id = r.id RETURNING hash INTO h;
  END LOOP;
  UPDATE audit_chain_head SET seq = (SELECT max(seq) FROM audit_events), hash = h;
END $$;`;

/** Moves rows with seq >= from by `delta` without tripping the unique index mid-statement. */
const SHIFT = (from: number, delta: number) =>
  `UPDATE audit_events SET seq = -seq WHERE seq >= ${from}; UPDATE audit_events SET seq = -seq + ${delta} WHERE seq < 0;`;

describe("verifyAuditChain against a tampering table owner", () => {
  let t: TestDatabase;
  beforeEach(async () => {
    t = await createTestDatabase();
    for (let i = 1; i <= 20; i++) {
      await recordAuditEvent(t.db, { type: `event.${i}`, actor: { actorType: "system", actorId: "test" }, reason: `r${i}`, data: { i } });
    }
  });
  afterEach(() => t.drop());

  const verify = (options: Partial<VerifyAuditChainOptions> = {}) => verifyAuditChain(t.db, { ...keys, ...options });

  it("accepts the untouched chain, with its checkpoints, through Prisma and through pg", async () => {
    await writeCheckpoint(t.db, master);
    expect(await verify()).toMatchObject({ ok: true, lastSeq: 20n, events: 20, checkpoints: 1 });
    expect(await withClient(t.url, (c) => verifyAuditChain(c, { ...keys, pageSize: 3 }))).toMatchObject({ ok: true, lastSeq: 20n, events: 20 });
    expect(await verify({ fromSeq: 15 })).toMatchObject({ ok: true, lastSeq: 20n, events: 6 });
    // A start past the end is a wrong argument, not a deleted event (it was reported as tampering).
    await expect(verify({ fromSeq: 200 })).rejects.toMatchObject({ code: "INVALID_INPUT", message: expect.stringMatching(/last event is seq 20/) });
    // Deleting the events before a start inside the chain is still found.
    await tamper(t.adminUrl, "DELETE FROM audit_events WHERE seq = 14");
    expect(await verify({ fromSeq: 15 })).toMatchObject({ ok: false, problem: "deleted_or_gap" });
  });

  it("finds an edited event", async () => {
    await tamper(t.adminUrl, "UPDATE audit_events SET reason = 'nothing to see' WHERE seq = 7");
    expect(await verify()).toMatchObject({ ok: false, firstBadSeq: 7n, problem: "edited" });
  });

  it("finds an edited event whose own hash was recomputed", async () => {
    await tamper(t.adminUrl, `UPDATE audit_events SET data = '{"i": 700}' WHERE seq = 7; UPDATE audit_events SET hash = audit_event_hash(${HASH_ARGS}) WHERE seq = 7`);
    expect(await verify()).toMatchObject({ ok: false, firstBadSeq: 7n, problem: "edited" });
  });

  it("finds a deleted event, with or without the rest renumbered", async () => {
    await tamper(t.adminUrl, "DELETE FROM audit_events WHERE seq = 7");
    expect(await verify()).toMatchObject({ ok: false, firstBadSeq: 7n, problem: "deleted_or_gap" });
    await tamper(t.adminUrl, SHIFT(8, -1));
    expect(await verify()).toMatchObject({ ok: false, firstBadSeq: 7n, problem: "deleted_or_gap" });
  });

  it("finds a forged event inserted in the middle with a correct hash and link", async () => {
    await tamper(
      t.adminUrl,
      `${SHIFT(7, 1)}
       INSERT INTO audit_events (type, actor_type, reason, seq, prev_hash, at)
         SELECT 'forged', 'system', 'approved by nobody', 7, hash, now() FROM audit_events WHERE seq = 6;
       UPDATE audit_events SET hash = audit_event_hash(${HASH_ARGS}) WHERE seq = 7;`,
    );
    expect(await verify()).toMatchObject({ ok: false, firstBadSeq: 7n, problem: "inserted" });
  });

  it("finds an event appended behind the chain's back, and one without a seq", async () => {
    await tamper(
      t.adminUrl,
      `INSERT INTO audit_events (type, actor_type, seq, prev_hash, at) SELECT 'forged', 'system', 21, hash, now() FROM audit_events WHERE seq = 20;
       UPDATE audit_events SET hash = audit_event_hash(${HASH_ARGS}) WHERE seq = 21;`,
    );
    expect(await verify()).toMatchObject({ ok: false, firstBadSeq: 21n, problem: "head_mismatch" });
    await tamper(t.adminUrl, "INSERT INTO audit_events (type, actor_type) VALUES ('unchained', 'system')");
    expect(await verify()).toMatchObject({ ok: false, problem: "inserted" });
  });

  it("finds a swapped pair", async () => {
    await tamper(t.adminUrl, "UPDATE audit_events SET seq = -1 WHERE seq = 7; UPDATE audit_events SET seq = 7 WHERE seq = 8; UPDATE audit_events SET seq = 8 WHERE seq = -1;");
    expect(await verify()).toMatchObject({ ok: false, firstBadSeq: 7n, problem: "reordered" });
  });

  it("finds a truncated tail by the head, and by signed checkpoints once the head is moved back too", async () => {
    await writeCheckpoint(t.db, master);
    await tamper(t.adminUrl, "DELETE FROM audit_events WHERE seq > 15");
    expect(await verify()).toMatchObject({ ok: false, firstBadSeq: 16n, problem: "truncated" });
    await tamper(t.adminUrl, "UPDATE audit_chain_head SET seq = 15, hash = (SELECT hash FROM audit_events WHERE seq = 15)");
    // The rows and the head agree now: only the signed checkpoint at seq 20 shows the cut.
    expect(await verify()).toMatchObject({ ok: false, firstBadSeq: 16n, problem: "truncated" });
    const external = await withClient(t.url, async (c) => (await c.query<{ seq: string; hash: string; key_id: string; signature: string }>("SELECT seq::text AS seq, hash, key_id, signature FROM audit_checkpoints")).rows);
    await tamper(t.adminUrl, "DELETE FROM audit_checkpoints");
    // Without checkpoints the cut chain is indistinguishable from a shorter one...
    expect(await verify()).toMatchObject({ ok: true, lastSeq: 15n });
    // ...unless a checkpoint was kept outside the database.
    const trustedCheckpoints = external.map((c) => ({ seq: BigInt(c.seq), hash: c.hash, keyId: c.key_id, signature: c.signature }));
    expect(await verify({ trustedCheckpoints })).toMatchObject({ ok: false, firstBadSeq: 16n, problem: "truncated" });
  });

  it("finds a rewritten chain by its checkpoint, which nothing else can", async () => {
    await writeCheckpoint(t.db, master);
    await tamper(t.adminUrl, `UPDATE audit_events SET outcome = 'allow' WHERE seq = 9; ${RECHAIN(9)}`);
    const result = await verify();
    expect(result).toMatchObject({ ok: false, firstBadSeq: 20n, problem: "checkpoint_mismatch" });
    expect(result.ok || result.detail).toMatch(/rewritten after seq 0/);
    await tamper(t.adminUrl, "DELETE FROM audit_checkpoints");
    expect(await verify()).toMatchObject({ ok: true });
  });

  it("rejects a checkpoint signed with another key", async () => {
    const forged = signCheckpoint(randomBytes(32), 20n, (await withClient(t.url, (c) => c.query<{ hash: string }>("SELECT hash FROM audit_chain_head"))).rows[0]!.hash);
    await withClient(t.url, (c) =>
      c.query("INSERT INTO audit_checkpoints (seq, hash, key_id, signature) VALUES ($1, $2, $3, $4)", [forged.seq.toString(), forged.hash, forged.keyId, forged.signature]),
    );
    expect(await verify()).toMatchObject({ ok: false, firstBadSeq: 20n, problem: "checkpoint_mismatch" });
    // A genuine checkpoint presented under the wrong key set is no better.
    await tamper(t.adminUrl, "DELETE FROM audit_checkpoints");
    await writeCheckpoint(t.db, master);
    expect(await verify({ checkpointKeys: [checkpointVerificationKey(randomBytes(32))] })).toMatchObject({ ok: false, problem: "checkpoint_mismatch" });
    // And a checkpoint whose hash was swapped for the forged chain's fails its signature.
    await tamper(t.adminUrl, "UPDATE audit_checkpoints SET hash = repeat('0', 64)");
    expect(await verify()).toMatchObject({ ok: false, problem: "checkpoint_mismatch" });
  });

  it("still refuses UPDATE and DELETE of events, moving the head, and editing checkpoints, with the triggers on", async () => {
    await writeCheckpoint(t.db, master);
    // As the owner, which holds every privilege on the tables: the triggers alone refuse it.
    await withClient(t.ownerUrl, async (c) => {
      await expect(c.query("UPDATE audit_events SET reason = 'x' WHERE seq = 1")).rejects.toThrow(/append-only/);
      await expect(c.query("DELETE FROM audit_events WHERE seq = 20")).rejects.toThrow(/append-only/);
      await expect(c.query("UPDATE audit_chain_head SET seq = 1")).rejects.toThrow(/moves only with audit inserts/);
      await expect(c.query("DELETE FROM audit_chain_head")).rejects.toThrow(/moves only with audit inserts/);
      await expect(c.query("INSERT INTO audit_chain_head (id, seq, hash) VALUES (2, 0, '')")).rejects.toThrow(/moves only with audit inserts/);
      await expect(c.query("TRUNCATE audit_chain_head")).rejects.toThrow(/moves only with audit inserts/);
      await expect(c.query("DELETE FROM audit_checkpoints")).rejects.toThrow(/append-only/);
      await expect(c.query("UPDATE audit_checkpoints SET seq = 1")).rejects.toThrow(/append-only/);
    });
    expect(await verify()).toMatchObject({ ok: true, lastSeq: 20n });
  });

  it("signs only a head that matches its event, and only when there is something new", async () => {
    expect(await writeCheckpoint(t.db, master)).toMatchObject({ seq: 20n });
    expect(await writeCheckpoint(t.db, master)).toBeNull();
    await tamper(t.adminUrl, "UPDATE audit_events SET hash = repeat('1', 64) WHERE seq = 20");
    await recordAuditEvent(t.db, { type: "after", actor: { actorType: "system", actorId: "test" } });
    await tamper(t.adminUrl, "UPDATE audit_chain_head SET hash = repeat('2', 64)");
    await expect(writeCheckpoint(t.db, master)).rejects.toThrow(/refusing to sign/);
  });
});
