import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { authenticateLocal, authenticateOidc } from "@/lib/auth/authenticate";
import { createSession, deleteSession, resolveSession } from "@/lib/auth/sessions";
import { createUser, listUsers, setUserDisabled, setUserRole } from "@/lib/users/users";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser, TEST_PASSWORD, unique } from "../../support/factories";

describe("users, sign-in and database sessions", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(() => t.drop());

  it("creates users with argon2id hashes and a generated password shown once", async () => {
    const { actor } = await makeUser(t.db, "admin");
    const { user, generatedPassword } = await createUser(t.db, actor, { email: `  ${unique("New")}@Example.test `, role: "auditor" });
    expect(user.email).toBe(user.email.toLowerCase().trim());
    expect(generatedPassword).toMatch(/^[A-Za-z0-9_-]{24}$/);
    const row = await t.db.user.findUniqueOrThrow({ where: { id: user.id } });
    expect(row.passwordHash).toMatch(/^\$argon2id\$/);
    expect(row.passwordHash).not.toContain(generatedPassword!);
    expect(await authenticateLocal(t.db, user.email, generatedPassword)).toBe(user.id);
  });

  it("refuses wrong password, unknown email and disabled account alike", async () => {
    const admin = await makeUser(t.db, "admin");
    const victim = await makeUser(t.db, "approver");
    expect(await authenticateLocal(t.db, victim.email, "wrong password!!")).toBeNull();
    expect(await authenticateLocal(t.db, "nobody@example.test", TEST_PASSWORD)).toBeNull();
    expect(await authenticateLocal(t.db, victim.email, "")).toBeNull();
    expect(await authenticateLocal(t.db, { $ne: null }, TEST_PASSWORD)).toBeNull();
    await setUserDisabled(t.db, admin.actor, victim.user.id, true);
    expect(await authenticateLocal(t.db, victim.email, TEST_PASSWORD)).toBeNull();
    const reasons = (await t.db.auditEvent.findMany({ where: { type: "auth.sign_in_failed" } })).map((e) => e.reason);
    expect(reasons).toEqual(expect.arrayContaining(["wrong password", "unknown email", "account disabled"]));
  });

  it("resolves a session per request; sign-out deletes it; only the token hash is stored", async () => {
    const u = await makeUser(t.db, "auditor");
    const token = await createSession(t.db, u.user.id, 3600);
    expect(await resolveSession(t.db, token)).toMatchObject({ userId: u.user.id, role: "auditor" });
    expect(await t.db.session.findFirst({ where: { tokenHash: token } })).toBeNull();
    await deleteSession(t.db, token);
    expect(await resolveSession(t.db, token)).toBeNull();
  });

  it("sees a role change and a disabled user on the very next request", async () => {
    const admin = await makeUser(t.db, "admin");
    const u = await makeUser(t.db, "admin");
    const token = await createSession(t.db, u.user.id, 3600);
    await setUserRole(t.db, admin.actor, u.user.id, "auditor");
    expect((await resolveSession(t.db, token))?.role).toBe("auditor");
    await setUserDisabled(t.db, admin.actor, u.user.id, true);
    expect(await resolveSession(t.db, token)).toBeNull();
    expect(await t.db.session.count({ where: { userId: u.user.id } })).toBe(0);
  });

  it("expires sessions", async () => {
    const u = await makeUser(t.db, "auditor");
    const token = await createSession(t.db, u.user.id, 1);
    expect(await resolveSession(t.db, token, new Date(Date.now() + 5_000))).toBeNull();
  });

  it("never lets the last active admin be demoted or disabled", async () => {
    const fresh = await createTestDatabase();
    try {
      const only = await makeUser(fresh.db, "admin");
      await expect(setUserRole(fresh.db, only.actor, only.user.id, "auditor")).rejects.toThrow(/last active admin/);
      await expect(setUserDisabled(fresh.db, only.actor, only.user.id, true)).rejects.toThrow(/last active admin/);
    } finally {
      await fresh.drop();
    }
  });

  it("only admins manage users", async () => {
    const approver = await makeUser(t.db, "approver");
    await expect(listUsers(t.db, approver.actor)).rejects.toMatchObject({ code: "FORBIDDEN" });
    await expect(createUser(t.db, approver.actor, { email: "x@example.test", role: "admin" })).rejects.toMatchObject({
      code: "FORBIDDEN",
    });
  });

  it("maps OIDC identities only to provisioned users with a verified email", async () => {
    const u = await makeUser(t.db, "approver");
    const sub = unique("sub");
    expect(await authenticateOidc(t.db, { issuer: "https://id.example.test", subject: sub, email: u.email, emailVerified: false })).toBeNull();
    expect(await authenticateOidc(t.db, { issuer: "https://id.example.test", subject: sub, email: "stranger@example.test", emailVerified: true })).toBeNull();
    expect(await authenticateOidc(t.db, { issuer: "https://id.example.test", subject: sub, email: u.email, emailVerified: true })).toBe(u.user.id);
    // Linked by subject from now on, even if the IdP's email claim changes.
    expect(await authenticateOidc(t.db, { issuer: "https://id.example.test", subject: sub, email: "changed@example.test", emailVerified: true })).toBe(
      u.user.id,
    );
  });
});
