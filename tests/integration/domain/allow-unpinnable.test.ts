import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { approveAndAllow, previewApproveAndAllow } from "@/lib/approvals/allow-rule";
import type { Actor } from "@/lib/auth/actor";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";

/**
 * "Approve and allow for the rest of the task" writes a rule pinned to service, environment,
 * operation, resource and effect. Where that pins nothing, it is refused: an action without a
 * resource (an MCP `delete_volume` approved as a dry run allowed it on `vol_prod` next), and SQL
 * whose effect is code (a `CREATE FUNCTION cleanup` approved with `SELECT 1` in it, then
 * replaced by one that drops a table; a `DO` block, then another `DO` block).
 */
describe("approve-and-allow where a rule would pin nothing", () => {
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

  async function held(action: Record<string, unknown>) {
    const agentId = (await t.db.agent.create({ data: { name: unique("agent"), ownerId } })).id;
    const task = await t.db.task.create({ data: { agentId, purpose: "held", policyYaml: "unlisted: deny\nrules: []\n", expiresAt: new Date(Date.now() + 3600_000) } });
    return t.adminDb().approval.create({
      data: { taskId: task.id, agentId, requestDigest: "d".repeat(64), method: "POST", url: "http://svc.test/x", reason: "held", actions: [{ environment: "production", effect: "irreversible", ...action }], expiresAt: new Date(Date.now() + 600_000) },
    });
  }

  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ["an MCP tool call without a resource", { service: "ops-mcp", operation: "delete_volume", resource: "-" }, /names no resource/],
    ["a SQL function definition", { service: "pg-http", operation: "CREATE FUNCTION", resource: "cleanup", detail: { statement: 0, note: "function bodies cannot be analysed" } }, /runs code a rule cannot pin/],
    ["a SQL DO block", { service: "pg-http", operation: "DO", resource: "-", detail: { statement: 0, note: "procedural code cannot be analysed" } }, /names no resource|runs code/],
    ["a prepared statement run", { service: "pg-http", operation: "EXECUTE", resource: "p1", detail: { statement: 0 } }, /runs code a rule cannot pin/],
  ];
  for (const [name, action, why] of cases) {
    it(`${name}: refused, nothing decided or added`, async () => {
      const approval = await held(action);
      const preview = await previewApproveAndAllow(t.db, admin, approval.id);
      expect(preview.possible).toBe(false);
      expect(preview.why).toMatch(why);
      await expect(approveAndAllow(t.db, admin, approval.id)).rejects.toMatchObject({ code: "CONFLICT" });
      expect((await t.db.approval.findUniqueOrThrow({ where: { id: approval.id } })).status).toBe("pending");
      expect((await t.db.task.findUniqueOrThrow({ where: { id: approval.taskId } })).policyVersion).toBe(1);
    });
  }

  it("an action with its own resource is still possible (the control)", async () => {
    const approval = await held({ service: "ops-mcp", operation: "delete_volume", resource: "vol_stg" });
    expect((await previewApproveAndAllow(t.db, admin, approval.id)).possible).toBe(true);
  });
});
