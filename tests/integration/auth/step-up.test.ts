import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { authenticateApiKey, createApiKey } from "@/lib/apikeys";
import type { Actor } from "@/lib/auth/actor";
import { createSession, resolveSession } from "@/lib/auth/sessions";
import { reauthenticateWithPassword, requireStepUp } from "@/lib/auth/step-up";
import type { Db } from "@/lib/db/client";
import { isAppError } from "@/lib/errors/app-error";
import { INVENTORY_SETTING, setInventoryYaml } from "@/lib/services/inventory";
import { deleteCustomService, saveCustomService } from "@/lib/services/services";
import { updateTaskPolicy } from "@/lib/tasks/policy";
import { createTask } from "@/lib/tasks/tasks";
import { createUser, setUserDisabled, setUserRole } from "@/lib/users/users";
import { addCredential, bindCredential, deleteCredential, rotateCredential } from "@/lib/vault";
import { createWebhook, deleteWebhook } from "@/lib/webhooks/webhooks";
import type { WebhookNetworkPolicy } from "@/lib/webhooks/destination";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { establishTestKeys } from "../../support/keys";
import type { BoxRecipient } from "@/lib/crypto/sealed-box";
import { makeUser, TEST_PASSWORD, unique } from "../../support/factories";

const MINUTE = 60_000;
const THROTTLE = { accountAttempts: 5, addressAttempts: 20, maxLockoutSeconds: 900 };
const SAFE_POLICY = "rules:\n  - service: railway\n    environments: [staging]\n    effects: [read]\n";
const WIDE_POLICY = `${SAFE_POLICY}  - id: wipe\n    service: railway\n    effects: [irreversible]\n    waive_approval: true\n`;
// Receivers resolve to a public address here; where they may be is tested in webhook-destinations.
const WEBHOOK_NETWORK: WebhookNetworkPolicy = { allowedNetworks: [], ownPorts: [], lookup: async () => [{ address: "93.184.216.34", family: 4 }] };
const SERVICE = (id: string) => `id: ${id}\nhosts: [${id}.example.test]\nscheme: https\nprotocol: rest\nrest:\n  routes: []\n`;

/** A signed-in person whose session's last authentication was `minutesAgo` ago (a stolen cookie). */
async function sessionActor(db: Db, minutesAgo: number) {
  const u = await makeUser(db, "admin");
  const token = await createSession(db, u.user.id, 12 * 3600, { authenticatedAt: new Date(Date.now() - minutesAgo * MINUTE) });
  const session = (await resolveSession(db, token))!;
  const actor: Actor = { kind: "user", userId: u.user.id, email: u.email, role: "admin", sessionId: session.sessionId, authenticatedAt: session.authenticatedAt, authMethod: session.authMethod };
  return { ...u, actor, token };
}

async function stepUpRefusal(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(isAppError(error) && error.code, String(error)).toBe("STEP_UP_REQUIRED");
  return (error as Error & { userMessage: string }).userMessage;
}

describe("step-up for dangerous changes", () => {
  let t: TestDatabase;
  let agentId: string;
  let admin: Actor;
  // The dashboard seals credentials to the worker's public key.
  let KEY: BoxRecipient;
  // Webhook secrets are sealed under the dashboard's key.
  let DASHBOARD_KEY: Buffer;
  beforeAll(async () => {
    t = await createTestDatabase();
    ({ workerKey: KEY, dashboardKey: DASHBOARD_KEY } = await establishTestKeys(t.db));
    admin = (await makeUser(t.db, "admin")).actor;
    // The policies below name the staging environment, which must exist in the inventory.
    await t.db.setting.create({ data: { key: INVENTORY_SETTING, value: "entries:\n  - environment: staging\n    resources: [\"vol_stg\"]\n" } });
    agentId = (await t.db.agent.create({ data: { name: unique("agent"), ownerId: (admin as { userId: string }).userId } })).id;
  });
  afterAll(() => t.drop());

  /** Every dangerous change, with what must be unchanged when it is refused. */
  function dangerousChanges(db: Db) {
    return [
      { name: "add a credential", run: (a: Actor) => addCredential(db, a, KEY, { name: unique("c"), host: `${unique("h")}.example.test`, headerTemplate: "X-Key: {secret}", secret: "s3cret-value-1", environments: "*" }), count: () => db.credential.count() },
      { name: "rotate a credential", setup: () => addCredential(db, admin, KEY, { name: unique("r"), host: `${unique("h")}.example.test`, headerTemplate: "X-Key: {secret}", secret: "s3cret-value-2", environments: "*" }), run: (a: Actor, c: { id: string }) => rotateCredential(db, a, KEY, c.id, "s3cret-value-3"), count: () => db.credential.count({ where: { rotatedAt: { not: null } } }) },
      { name: "rebind a credential", setup: () => addCredential(db, admin, KEY, { name: unique("b"), host: `${unique("h")}.example.test`, headerTemplate: "X-Key: {secret}", secret: "s3cret-value-6", environments: "staging" }), run: (a: Actor, c: { id: string }) => bindCredential(db, a, c.id, { environments: "*" }), count: () => db.credential.count({ where: { environments: "*" } }) },
      { name: "delete a credential", setup: () => addCredential(db, admin, KEY, { name: unique("d"), host: `${unique("h")}.example.test`, headerTemplate: "X-Key: {secret}", secret: "s3cret-value-4", environments: "*" }), run: (a: Actor, c: { id: string }) => deleteCredential(db, a, c.id), count: () => db.credential.count() },
      { name: "create an API key", run: (a: Actor) => createApiKey(db, a, { name: unique("k"), role: "admin" }), count: () => db.apiKey.count() },
      { name: "change a role", setup: () => makeUser(db, "auditor"), run: (a: Actor, u: { user: { id: string } }) => setUserRole(db, a, u.user.id, "admin"), count: () => db.user.count({ where: { role: "admin" } }) },
      { name: "add a user", run: (a: Actor) => createUser(db, a, { email: `${unique("new")}@example.test`, role: "admin" }), count: () => db.user.count() },
      { name: "re-enable a user", setup: async () => { const u = await makeUser(db, "approver"); await db.user.update({ where: { id: u.user.id }, data: { disabledAt: new Date() } }); return u; }, run: (a: Actor, u: { user: { id: string } }) => setUserDisabled(db, a, u.user.id, false), count: () => db.user.count({ where: { disabledAt: null } }) },
      { name: "create a task with an allow-all policy", run: (a: Actor) => createTask(db, a, { agentId, purpose: "wide open", policyYaml: WIDE_POLICY }), count: () => db.task.count() },
      { name: "widen a task's policy", setup: () => createTask(db, admin, { agentId, purpose: "to widen", policyYaml: SAFE_POLICY }), run: (a: Actor, task: { id: string }) => updateTaskPolicy(db, a, task.id, WIDE_POLICY), count: () => db.task.count({ where: { policyVersion: { gt: 1 } } }) },
      { name: "save a service descriptor", run: (a: Actor) => saveCustomService(db, a, SERVICE(unique("svc").replace(/-/g, ""))), count: () => db.service.count() },
      { name: "delete a service descriptor", setup: async () => saveCustomService(db, admin, SERVICE(unique("svc").replace(/-/g, ""))), run: (a: Actor, s: { name: string }) => deleteCustomService(db, a, s.name), count: () => db.service.count() },
      // A webhook receives every held request's details at an address of the admin's choosing.
      { name: "add a webhook", run: (a: Actor) => createWebhook(db, a, DASHBOARD_KEY, WEBHOOK_NETWORK, { name: unique("hook"), url: `https://${unique("hooks")}.example.com/in` }), count: () => db.webhook.count() },
      { name: "remove a webhook", setup: () => createWebhook(db, admin, DASHBOARD_KEY, WEBHOOK_NETWORK, { name: unique("hook"), url: `https://${unique("hooks")}.example.com/in` }), run: (a: Actor, w: { id: string }) => deleteWebhook(db, a, w.id), count: () => db.webhook.count() },
      { name: "change the inventory", run: (a: Actor) => setInventoryYaml(db, a, `entries:\n  - environment: staging\n    resources: ["${unique("vol")}"]\n`), count: () => db.setting.count({ where: { key: "inventory.yaml" } }) },
    ] as Array<{ name: string; setup?: () => Promise<unknown>; run: (a: Actor, target: never) => Promise<unknown>; count: () => Promise<number> }>;
  }

  it("refuses every dangerous change from a session whose last sign-in is older than the window, and changes nothing", async () => {
    const stale = await sessionActor(t.db, 6);
    for (const change of dangerousChanges(t.db)) {
      const target = change.setup ? await change.setup() : undefined;
      const before = await change.count();
      const message = await stepUpRefusal(change.run(stale.actor, target as never));
      expect(message, change.name).toMatch(/^Confirm it is you to .+: your last sign-in is more than 5 minutes old\.$/);
      expect(await change.count(), change.name).toBe(before);
    }
    // A user actor that never authenticated (no session information at all) is refused too.
    const { authenticatedAt: _drop, ...noSession } = stale.actor as Extract<Actor, { kind: "user" }>;
    await stepUpRefusal(addCredential(t.db, noSession, KEY, { name: unique("c"), host: `${unique("h")}.example.test`, headerTemplate: "X-Key: {secret}", secret: "s3cret-value-5", environments: "*" }));
  });

  it("accepts them after re-authentication, records how, and refuses again once the window has passed", async () => {
    const person = await sessionActor(t.db, 30);
    await expect(reauthenticateWithPassword(t.db, person.actor, "not the password", { address: null, throttle: THROTTLE })).rejects.toMatchObject({ code: "FORBIDDEN" });
    const { sessionToken } = await reauthenticateWithPassword(t.db, person.actor, TEST_PASSWORD, { address: null, throttle: THROTTLE });
    const refreshed = (await resolveSession(t.db, sessionToken))!;
    expect(Date.now() - refreshed.authenticatedAt).toBeLessThan(MINUTE);
    const fresh: Actor = { ...person.actor, authenticatedAt: refreshed.authenticatedAt } as Actor;
    for (const change of dangerousChanges(t.db)) {
      const target = change.setup ? await change.setup() : undefined;
      await change.run(fresh, target as never);
    }
    const audited = await t.db.auditEvent.findMany({ where: { actorId: person.user.id } });
    const withStepUp = audited.filter((e) => (e.data as { stepUp?: { method?: string } }).stepUp?.method === "password");
    expect(withStepUp.length).toBeGreaterThanOrEqual(13);
    expect(audited.find((e) => e.type === "webhook.created")?.data).toMatchObject({ stepUp: { method: "password" } });
    expect(audited.some((e) => e.type === "auth.reauthenticated")).toBe(true);

    // Six minutes later the same session is stale again.
    const later = Date.now() + 6 * MINUTE;
    expect(() => requireStepUp(fresh, "add a vault credential", later)).toThrow(/Re-authentication required/);
    await t.db.session.update({ where: { id: refreshed.sessionId }, data: { authenticatedAt: new Date(Date.now() - 6 * MINUTE) } });
    const stale = (await resolveSession(t.db, sessionToken))!;
    await stepUpRefusal(createApiKey(t.db, { ...person.actor, authenticatedAt: stale.authenticatedAt } as Actor, { name: unique("k"), role: "auditor" }));
  });

  it("re-authenticates only the session it was done in: another stolen session of the same person stays stale", async () => {
    const person = await sessionActor(t.db, 30);
    const otherToken = await createSession(t.db, person.user.id, 3600, { authenticatedAt: new Date(Date.now() - 30 * MINUTE) });
    await reauthenticateWithPassword(t.db, person.actor, TEST_PASSWORD, { address: null, throttle: THROTTLE });
    const other = (await resolveSession(t.db, otherToken))!;
    expect(Date.now() - other.authenticatedAt).toBeGreaterThan(25 * MINUTE);
  });

  it("gives the re-authenticated session a new token: a copy of the old cookie is signed out, never made fresh", async () => {
    const person = await sessionActor(t.db, 30);
    const copied = person.token; // what a thief holds: the very same cookie
    expect(await resolveSession(t.db, copied)).not.toBeNull();
    const { sessionToken } = await reauthenticateWithPassword(t.db, person.actor, TEST_PASSWORD, { address: null, throttle: THROTTLE });
    expect(sessionToken).not.toBe(copied);
    // Before, the copy resolved to the same, now fresh, session and could create an admin API key.
    expect(await resolveSession(t.db, copied)).toBeNull();
    const renewed = (await resolveSession(t.db, sessionToken))!;
    expect(renewed.sessionId).toBe(person.actor.sessionId); // the same row: live streams keep running
    expect(Date.now() - renewed.authenticatedAt).toBeLessThan(MINUTE);
    const event = await t.db.auditEvent.findFirstOrThrow({ where: { type: "auth.reauthenticated", actorId: person.user.id } });
    expect(event.data).toMatchObject({ sessionId: person.actor.sessionId, method: "password", tokenRotated: true });
  });

  it("lets changes that only narrow through without re-authentication", async () => {
    const stale = (await sessionActor(t.db, 60)).actor;
    const task = await createTask(t.db, stale, { agentId, purpose: "reads only", policyYaml: SAFE_POLICY });
    await updateTaskPolicy(t.db, stale, task.id, `${SAFE_POLICY}  - service: github\n    effects: [read]\n`);
    await updateTaskPolicy(t.db, stale, task.id, "rules: []\n");
    const victim = await makeUser(t.db, "approver");
    await setUserDisabled(t.db, stale, victim.user.id, true);
  });

  it("exempts API keys whose role allows the change, and audits the exemption", async () => {
    const { key } = await createApiKey(t.db, admin, { name: unique("ci"), role: "admin" });
    const apiKey = (await authenticateApiKey(t.db, key))!;
    const credential = await addCredential(t.db, apiKey, KEY, { name: unique("via-key"), host: `${unique("h")}.example.test`, headerTemplate: "X-Key: {secret}", secret: "s3cret-value-9", environments: "*" });
    const event = await t.db.auditEvent.findFirstOrThrow({ where: { type: "credential.added", data: { path: ["credentialId"], equals: credential.id } } });
    expect(event.actorType).toBe("api_key");
    expect((event.data as { stepUp: unknown }).stepUp).toEqual({ exempt: "api_key" });
    const task = await createTask(t.db, apiKey, { agentId, purpose: "wide via key", policyYaml: WIDE_POLICY });
    const created = await t.db.auditEvent.findFirstOrThrow({ where: { type: "task.created", taskId: task.id } });
    expect((created.data as { stepUp: unknown; widenings: string[] }).stepUp).toEqual({ exempt: "api_key" });
    expect((created.data as { widenings: string[] }).widenings[0]).toMatch(/waives approval/);
    const hook = await createWebhook(t.db, apiKey, DASHBOARD_KEY, WEBHOOK_NETWORK, { name: unique("via-key"), url: "https://hooks.example.com/key" });
    const hookEvent = await t.db.auditEvent.findFirstOrThrow({ where: { type: "webhook.created", data: { path: ["webhookId"], equals: hook.id } } });
    expect((hookEvent.data as { stepUp: unknown }).stepUp).toEqual({ exempt: "api_key" });
    // The role still decides: an auditor key is refused by its role, not let through by the exemption.
    const auditorKey = (await authenticateApiKey(t.db, (await createApiKey(t.db, admin, { name: unique("ro"), role: "auditor" })).key))!;
    await expect(addCredential(t.db, auditorKey, KEY, { name: unique("no"), host: `${unique("h")}.example.test`, headerTemplate: "X-Key: {secret}", secret: "s3cret-value-8", environments: "*" })).rejects.toMatchObject({ code: "FORBIDDEN" });
  });
});
