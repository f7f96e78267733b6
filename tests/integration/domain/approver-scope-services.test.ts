import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getApproverScope, setApproverScope } from "@/lib/approvals/approver-scope";
import type { Actor } from "@/lib/auth/actor";
import { isAppError } from "@/lib/errors/app-error";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser } from "../../support/factories";

/**
 * An approver scope names services as a policy does, and like a policy's names they must exist: a
 * typo ("githbu") was stored, and the approver then saw and decided nothing, with nobody told.
 * The agents of a scope were already checked.
 */
describe("an approver scope's services", () => {
  let t: TestDatabase;
  let admin: Actor;

  beforeAll(async () => {
    t = await createTestDatabase();
    admin = (await makeUser(t.db, "admin")).actor;
  });
  afterAll(() => t.drop());

  async function refusal(userId: string, services: string[]) {
    return setApproverScope(t.db, admin, userId, { services }).then(
      () => null,
      (e: unknown) => e,
    );
  }

  it("a service that does not exist is refused, naming it and the nearest one; nothing is stored or audited", async () => {
    const approver = await makeUser(t.db, "approver");
    const events = await t.db.auditEvent.count({ where: { type: "user.approver_scope_changed" } });
    const error = await refusal(approver.user.id, ["github", "githbu"]);
    expect(isAppError(error) && error.code === "INVALID_INPUT").toBe(true);
    const message = (error as Error).message;
    expect(message).toMatch(/^No service is called "githbu" \(did you mean "github"\?\); the services are .*github.*railway.*unknown/);
    expect((error as { details: { fieldErrors: Record<string, string[]> } }).details.fieldErrors.services).toEqual([message]);
    expect(await getApproverScope(t.db, admin, approver.user.id)).toEqual({ agents: [], services: [] });
    expect(await t.db.auditEvent.count({ where: { type: "user.approver_scope_changed" } })).toBe(events);
  });

  it("a malformed one is told what a service id is", async () => {
    const approver = await makeUser(t.db, "approver");
    const error = await refusal(approver.user.id, ["Bad Service!"]);
    expect(JSON.stringify(error)).toContain("Each service is a service id such as github or railway");
  });

  it("built-in, custom and `unknown` services are taken; one already in the scope stays allowed after its service is deleted", async () => {
    const approver = await makeUser(t.db, "approver");
    await t.db.service.create({ data: { name: "crm", descriptorYaml: "id: crm\nhosts: [api.crm.example]\nprotocol: rest\n" } });
    expect(await setApproverScope(t.db, admin, approver.user.id, { services: ["github", "crm", "unknown"] })).toEqual({ agents: [], services: ["github", "crm", "unknown"] });
    await t.db.service.delete({ where: { name: "crm" } });
    expect(await setApproverScope(t.db, admin, approver.user.id, { services: ["crm"] })).toEqual({ agents: [], services: ["crm"] });
    expect(await refusal(approver.user.id, ["crm", "billing"])).toMatchObject({ code: "INVALID_INPUT" });
  });
});
