import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { decideApproval } from "@/lib/approvals/decide-approval";
import { approvalsLog } from "@/lib/approvals/log";
import { setUserDisabled } from "@/lib/users/users";
import type { Actor } from "@/lib/auth/actor";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";

/**
 * A decision refused because the decider's authority went away is recorded after its transaction
 * rolled back, on its own. When even that record cannot be written, the refusal still stands and
 * the failure is logged: never swallowed without a trace.
 */
describe("approval.decision_refused when its audit write fails", () => {
  let t: TestDatabase;
  let admin: Actor;
  let ownerId: string;

  beforeAll(async () => {
    t = await createTestDatabase();
    const a = await makeUser(t.db, "admin");
    admin = a.actor;
    ownerId = a.user.id;
  });
  afterAll(() => t.drop());

  it("refuses the decision and logs the failed audit write with the approval and verdict", async () => {
    const agentId = (await t.db.agent.create({ data: { name: unique("agent"), ownerId } })).id;
    const task = await t.db.task.create({ data: { agentId, purpose: "refused", policyYaml: "rules: []\n", expiresAt: new Date(Date.now() + 3600_000) } });
    const approval = await t.adminDb().approval.create({
      data: {
        taskId: task.id, agentId, requestDigest: "d".repeat(64), method: "DELETE", url: "https://api.railway.test/projects/1", reason: "held",
        actions: [{ service: "railway", effect: "destructive" }], requiredApprovals: 1, expiresAt: new Date(Date.now() + 600_000),
      },
    });
    const approver = await makeUser(t.db, "approver");
    await setUserDisabled(t.db, admin, approver.user.id, true);
    // The database refuses exactly this record (as the superuser: no Bulkhead role could do this).
    const su = new pg.Client({ connectionString: t.adminUrl });
    await su.connect();
    await su.query(`CREATE FUNCTION refuse_decision_refused() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.type = 'approval.decision_refused' THEN RAISE EXCEPTION 'refused for the test'; END IF; RETURN NEW; END $$`);
    await su.query("CREATE TRIGGER refuse_decision_refused BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_decision_refused()");
    const logged = vi.spyOn(approvalsLog, "error");
    try {
      const refused = await decideApproval(t.db, approver.actor, approval.id, "deny").then(() => null, (error: unknown) => error as { code?: string });
      expect(refused).toMatchObject({ code: "FORBIDDEN" });
      expect((await t.db.approval.findUniqueOrThrow({ where: { id: approval.id } })).status).toBe("pending");
      expect(await t.db.auditEvent.count({ where: { type: "approval.decision_refused" } })).toBe(0);
      expect(logged).toHaveBeenCalledTimes(1);
      const [fields, message] = logged.mock.calls[0] as unknown as [Record<string, unknown>, string];
      expect(message).toMatch(/decision_refused could not be recorded/);
      expect(fields).toMatchObject({ approvalId: approval.id, verdict: "deny", err: expect.stringContaining("refused for the test") });
    } finally {
      logged.mockRestore();
      await su.query("DROP TRIGGER refuse_decision_refused ON audit_events");
      await su.end();
    }
  });
});
