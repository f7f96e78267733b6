import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getApproverScope, setApproverScope } from "@/lib/approvals/approver-scope";
import { getApprovalSettings, updateApprovalSettings } from "@/lib/approvals/settings";
import type { Actor } from "@/lib/auth/actor";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";

/** A session whose last sign-in was a while ago (what a copied cookie looks like). */
const stale = (actor: Actor): Actor => ({ ...(actor as Extract<Actor, { kind: "user" }>), authenticatedAt: Date.now() - 3600_000 });

describe("who must approve: settings and approver scopes", () => {
  let t: TestDatabase;
  let admin: Actor;
  let approver: Actor;

  beforeAll(async () => {
    t = await createTestDatabase();
    admin = (await makeUser(t.db, "admin")).actor;
    approver = (await makeUser(t.db, "approver")).actor;
  });
  afterAll(() => t.drop());

  it("asking for more approvers applies at once; letting fewer approve needs step-up; approvers cannot change it", async () => {
    await expect(updateApprovalSettings(t.db, approver, { fourEyes: true })).rejects.toMatchObject({ code: "FORBIDDEN" });
    expect(await updateApprovalSettings(t.db, stale(admin), { fourEyes: true, requiredByEffect: { irreversible: 3 } })).toEqual({ fourEyes: true, requiredByEffect: { irreversible: 3 } });
    await expect(updateApprovalSettings(t.db, stale(admin), { fourEyes: false })).rejects.toMatchObject({ code: "STEP_UP_REQUIRED" });
    await expect(updateApprovalSettings(t.db, stale(admin), { requiredByEffect: { irreversible: 2 } })).rejects.toMatchObject({ code: "STEP_UP_REQUIRED" });
    expect(await getApprovalSettings(t.db, approver)).toEqual({ fourEyes: true, requiredByEffect: { irreversible: 3 } });
    await expect(updateApprovalSettings(t.db, admin, { requiredByEffect: { irreversible: 11 } })).rejects.toThrow();
    await updateApprovalSettings(t.db, admin, { fourEyes: false, requiredByEffect: {} });
    const events = await t.db.auditEvent.findMany({ where: { type: "settings.changed", data: { path: ["key"], equals: "approvals" } } });
    expect(events).toHaveLength(2);
  });

  it("an approver scope needs real agents; narrowing is free, widening or clearing needs step-up", async () => {
    const target = await makeUser(t.db, "approver");
    const owner = (admin as { userId: string }).userId;
    const a1 = await t.db.agent.create({ data: { name: unique("a"), ownerId: owner } });
    const a2 = await t.db.agent.create({ data: { name: unique("a"), ownerId: owner } });
    await expect(setApproverScope(t.db, admin, target.user.id, { agents: ["00000000-0000-4000-8000-000000000000"] })).rejects.toMatchObject({ code: "INVALID_INPUT" });
    await setApproverScope(t.db, stale(admin), target.user.id, { agents: [a1.id, a2.id], services: ["railway"] });
    await setApproverScope(t.db, stale(admin), target.user.id, { agents: [a1.id] });
    await expect(setApproverScope(t.db, stale(admin), target.user.id, { agents: [a1.id, a2.id] })).rejects.toMatchObject({ code: "STEP_UP_REQUIRED" });
    await expect(setApproverScope(t.db, stale(admin), target.user.id, {})).rejects.toMatchObject({ code: "STEP_UP_REQUIRED" });
    expect(await getApproverScope(t.db, admin, target.user.id)).toEqual({ agents: [a1.id], services: [] });
    await expect(setApproverScope(t.db, approver, target.user.id, {})).rejects.toMatchObject({ code: "FORBIDDEN" });
  });
});
