import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Actor } from "@/lib/auth/actor";
import { checkpointVerificationKey, writeCheckpoint } from "@/lib/audit/checkpoints";
import { verifyAuditChain } from "@/lib/audit/verify";
import { loadTaskReport } from "@/lib/reports/task-report";
import { insertEvents, proxyDecisions } from "../../support/audit-events";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser } from "../../support/factories";
import { makeFleet } from "../audit/fleet";
import { tamper, withClient } from "../audit/helpers";

/**
 * A task's report proves the task's events by the chain from the first of them to the signed
 * checkpoint that covers the last, not to the head: an old task's report re-verified every event
 * written since (seconds per report, with two report slots per dashboard, on a log of 300,000).
 */
describe("a task report verifies the chain from the task's first event to the checkpoint covering its last", () => {
  let t: TestDatabase;
  let auditor: Actor;
  let fleet: Awaited<ReturnType<typeof makeFleet>>;
  const signer = randomBytes(32);
  const checkpointKeys = [checkpointVerificationKey(signer)];
  let covering: bigint;
  let taskLast: bigint;

  beforeAll(async () => {
    t = await createTestDatabase();
    const { user: owner } = await makeUser(t.db, "admin");
    auditor = (await makeUser(t.db, "auditor")).actor;
    fleet = await makeFleet(t.db, owner.id, 1, 3);
    const [old, busy] = fleet.tasks;
    await withClient(t.url, (c) => insertEvents(c, proxyDecisions({ agents: fleet.agents, tasks: [old!] }, 40, { seed: 5 })));
    taskLast = BigInt((await t.db.auditEvent.aggregate({ where: { taskId: old!.id }, _max: { seq: true } }))._max.seq!);
    await withClient(t.url, (c) => insertEvents(c, proxyDecisions({ agents: fleet.agents, tasks: [busy!] }, 10, { seed: 6 })));
    covering = (await writeCheckpoint(t.db, signer))!.seq;
    // The log goes on long after the old task's checkpoint.
    await withClient(t.url, (c) => insertEvents(c, proxyDecisions({ agents: fleet.agents, tasks: [busy!] }, 3_000, { seed: 7 })));
  });
  afterAll(() => t.drop());

  it("stops at the covering checkpoint, not at the head, and says so", async () => {
    const [old] = fleet.tasks;
    const report = await loadTaskReport(t.db, auditor, old!.id, { checkpointKeys });
    expect(covering).toBeGreaterThan(taskLast);
    expect(report.verification).toMatchObject({ events: 40, lastSeq: taskLast.toString(), checkpoint: { seq: covering.toString(), signatureValid: true, matchesChain: true } });
    expect(report.verification.result).toEqual({ ok: true, verifiedThroughSeq: covering.toString() });
  });

  it("still finds an edit of the task's own events", async () => {
    const [old] = fleet.tasks;
    const first = BigInt((await loadTaskReport(t.db, auditor, old!.id, { checkpointKeys })).verification.firstSeq!);
    const seq = (first + 3n).toString();
    const { reason } = await t.db.auditEvent.findUniqueOrThrow({ where: { seq: BigInt(seq) }, select: { reason: true } });
    await tamper(t.adminUrl, "UPDATE audit_events SET reason = 'nothing to see' WHERE seq = $1", [seq]);
    try {
      const report = await loadTaskReport(t.db, auditor, old!.id, { checkpointKeys });
      expect(report.verification.result).toMatchObject({ ok: false, firstBadSeq: seq, problem: "edited" });
    } finally {
      await tamper(t.adminUrl, "UPDATE audit_events SET reason = $2 WHERE seq = $1", [seq, reason]);
    }
    expect((await loadTaskReport(t.db, auditor, old!.id, { checkpointKeys })).verification.result).toEqual({ ok: true, verifiedThroughSeq: covering.toString() });
  });

  it("a task whose last event no checkpoint covers yet is verified to the head; an edit after a task's checkpoint is the later tasks' finding", async () => {
    const [old, busy, fresh] = fleet.tasks;
    await withClient(t.url, (c) => insertEvents(c, proxyDecisions({ agents: fleet.agents, tasks: [fresh!] }, 5, { seed: 8 })));
    const head = (await t.db.auditChainHead.findUniqueOrThrow({ where: { id: 1 } })).seq;
    const freshReport = await loadTaskReport(t.db, auditor, fresh!.id, { checkpointKeys });
    expect(freshReport.verification.checkpoint).toBeNull();
    expect(freshReport.verification.result).toEqual({ ok: true, verifiedThroughSeq: head.toString() });

    // An event after the old task's checkpoint is edited: the busy task's report (whose events
    // run past it) and the chain as a whole are broken; the old task's events are still proven.
    const edited = covering + 100n;
    await tamper(t.adminUrl, "UPDATE audit_events SET type = 'edited' WHERE seq = $1", [edited.toString()]);
    expect(await verifyAuditChain(t.db, { checkpointKeys })).toMatchObject({ ok: false, firstBadSeq: edited });
    expect((await loadTaskReport(t.db, auditor, busy!.id, { checkpointKeys })).verification.result).toMatchObject({ ok: false, firstBadSeq: edited.toString() });
    expect((await loadTaskReport(t.db, auditor, old!.id, { checkpointKeys })).verification.result).toEqual({ ok: true, verifiedThroughSeq: covering.toString() });
  });

  it("verifyAuditChain's throughSeq: a part of the chain, complete through it, never past it", async () => {
    expect(await verifyAuditChain(t.db, { fromSeq: 1, throughSeq: covering, checkpointKeys })).toMatchObject({ ok: true, lastSeq: covering, checkpoints: 1 });
    await expect(verifyAuditChain(t.db, { fromSeq: 10, throughSeq: 9, checkpointKeys })).rejects.toThrow(/throughSeq is before fromSeq/);
    const head = (await t.db.auditChainHead.findUniqueOrThrow({ where: { id: 1 } })).seq;
    // Past the chain's end: incomplete, said as such.
    expect(await verifyAuditChain(t.db, { fromSeq: head, throughSeq: head + 5n, checkpointKeys: null })).toMatchObject({ ok: false, firstBadSeq: head + 1n, problem: "truncated" });
  });
});
