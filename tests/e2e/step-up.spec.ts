import { unique } from "../support/factories";
import { expect, signInViaApi, test } from "./support/fixtures";
import type { Db } from "../../lib/db/client";

/** What a stolen cookie looks like to the server: a session whose last sign-in was a while ago. */
async function ageSessions(db: Db, userId: string, minutes: number): Promise<void> {
  await db.session.updateMany({ where: { userId }, data: { authenticatedAt: new Date(Date.now() - minutes * 60_000) } });
}

test("a stale session must confirm the password to add a credential; the dialog then submits what was typed", async ({ page, createUser, db }) => {
  const admin = await createUser("admin");
  await signInViaApi(page.request, admin.email, admin.password);
  await ageSessions(db, admin.id, 10);
  await page.goto("/services");
  const name = unique("stepup-cred");
  await page.getByLabel("Name", { exact: true }).fill(name);
  await page.getByLabel("Scheme").selectOption("http");
  await page.getByLabel("Host", { exact: true }).fill(`${unique("h")}.example.test`);
  await page.getByLabel("Environments", { exact: true }).fill("*");
  await page.getByLabel("Header template", { exact: true }).fill("X-Api-Key: {secret}");
  await page.getByLabel("Secret", { exact: true }).fill("step-up-secret-value");
  await page.getByRole("button", { name: "Add credential" }).click();

  const dialog = page.getByTestId("step-up-dialog");
  await expect(dialog).toBeVisible();
  expect(await db.credential.count({ where: { name } })).toBe(0);
  await dialog.getByLabel("Your password").fill("not my password at all");
  await dialog.getByRole("button", { name: "Confirm" }).click();
  await expect(dialog.getByText("That password is not correct.")).toBeVisible();
  expect(await db.credential.count({ where: { name } })).toBe(0);

  await dialog.getByLabel("Your password").fill(admin.password);
  await dialog.getByRole("button", { name: "Confirm" }).click();
  await expect(dialog).toBeHidden();
  await expect(page.getByRole("status").filter({ hasText: `Added ${name}.` })).toBeVisible();
  const stored = await db.credential.findFirstOrThrow({ where: { name } });
  expect(stored.scheme).toBe("http");
  const event = await db.auditEvent.findFirstOrThrow({ where: { type: "credential.added", data: { path: ["credentialId"], equals: stored.id } } });
  expect((event.data as { stepUp: { method: string } }).stepUp.method).toBe("password");
  expect(await db.auditEvent.count({ where: { type: "auth.reauthenticated", actorId: admin.id } })).toBe(1);
});

test("saving a policy that widens what runs without a human needs step-up; narrowing it does not", async ({ page, createUser, db }) => {
  const admin = await createUser("admin");
  // The policies name staging, which must exist in the inventory (kept if another test saved one).
  const inventory = "entries:\n  - environment: staging\n    service: railway\n    resources: [env_staging]\n";
  await db.setting.upsert({ where: { key: "inventory.yaml" }, create: { key: "inventory.yaml", value: inventory }, update: {} });
  const agent = await db.agent.create({ data: { name: unique("widen-bot"), ownerId: admin.id } });
  const base = "unlisted: deny\nrules:\n  - service: railway\n    environments: [staging]\n    effects: [read]\n";
  const task = await db.task.create({ data: { agentId: agent.id, purpose: "widening", policyYaml: base, expiresAt: new Date(Date.now() + 3600_000) } });
  await signInViaApi(page.request, admin.email, admin.password);
  await ageSessions(db, admin.id, 10);
  await page.goto(`/tasks/${task.id}`);

  // Narrower: saved at once.
  await page.getByLabel("Policy (YAML)").fill("unlisted: deny\nrules: []\n");
  await page.getByRole("button", { name: "Save policy" }).click();
  await expect(page.getByRole("status")).toContainText("version 2");
  await expect(page.getByTestId("step-up-dialog")).toHaveCount(0);

  // Wider, without a human: the dialog; cancelling saves nothing and says why.
  const wide = `${base}  - id: wipe\n    service: railway\n    effects: [irreversible]\n    waive_approval: true\n`;
  await page.getByLabel("Policy (YAML)").fill(wide);
  await page.getByRole("button", { name: "Save policy" }).click();
  const dialog = page.getByTestId("step-up-dialog");
  await expect(dialog).toBeVisible();
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await expect(page.getByRole("alert").filter({ hasText: "Confirm it is you" })).toContainText("waives approval for irreversible effects");
  expect((await db.task.findUniqueOrThrow({ where: { id: task.id } })).policyVersion).toBe(2);

  // Confirmed: the same text is saved.
  await page.getByRole("button", { name: "Save policy" }).click();
  await dialog.getByLabel("Your password").fill(admin.password);
  await dialog.getByRole("button", { name: "Confirm" }).click();
  await expect(page.getByRole("status")).toContainText("version 3");
  // A textarea submits CRLF line ends; the text is otherwise what was typed.
  expect((await db.task.findUniqueOrThrow({ where: { id: task.id } })).policyYaml.replace(/\r\n/g, "\n")).toBe(wide);
});

test("changing a role from a stale session asks first", async ({ page, createUser, db }) => {
  const admin = await createUser("admin");
  const target = await createUser("auditor");
  await signInViaApi(page.request, admin.email, admin.password);
  await ageSessions(db, admin.id, 10);
  await page.goto("/users");
  const row = page.getByRole("row").filter({ hasText: target.email });
  await row.getByLabel("Role").selectOption("admin");
  await row.getByRole("button", { name: "Change role" }).click();
  const dialog = page.getByTestId("step-up-dialog");
  await expect(dialog).toBeVisible();
  expect((await db.user.findUniqueOrThrow({ where: { id: target.id } })).role).toBe("auditor");
  await dialog.getByLabel("Your password").fill(admin.password);
  await dialog.getByRole("button", { name: "Confirm" }).click();
  await expect(dialog).toBeHidden();
  await expect.poll(async () => (await db.user.findUniqueOrThrow({ where: { id: target.id } })).role).toBe("admin");
});

test("adding a webhook from a stale session asks first; the dialog then adds what was typed", async ({ page, createUser, db }) => {
  const admin = await createUser("admin");
  await signInViaApi(page.request, admin.email, admin.password);
  await ageSessions(db, admin.id, 10);
  await page.goto("/settings/webhooks");
  const name = unique("stepup-hook");
  await page.getByLabel("Name", { exact: true }).fill(name);
  // 127.0.0.2 is the network the browser tests' operator allows (tests/e2e/support/global-setup.ts).
  await page.getByLabel("URL", { exact: true }).fill("http://127.0.0.2:9/stepup");
  await page.getByRole("button", { name: "Add webhook" }).click();
  const dialog = page.getByTestId("step-up-dialog");
  await expect(dialog).toBeVisible();
  expect(await db.webhook.count({ where: { name } })).toBe(0);
  await dialog.getByLabel("Your password").fill(admin.password);
  await dialog.getByRole("button", { name: "Confirm" }).click();
  await expect(dialog).toBeHidden();
  await expect(page.getByTestId("webhook-secret")).toBeVisible();
  const stored = await db.webhook.findFirstOrThrow({ where: { name } });
  const event = await db.auditEvent.findFirstOrThrow({ where: { type: "webhook.created", data: { path: ["webhookId"], equals: stored.id } } });
  expect((event.data as { stepUp: { method: string } }).stepUp.method).toBe("password");
});

test("the API answers step_up_required, accepts a re-authentication, and refuses again once the window has passed", async ({ api, createUser, db }) => {
  const admin = await createUser("admin");
  await signInViaApi(api, admin.email, admin.password);
  const body = () => ({ name: unique("api-stepup"), host: `${unique("h")}.example.test`, headerTemplate: "X-Key: {secret}", secret: "api-step-up-secret", environments: "*" });

  // Fresh from sign-in: allowed.
  expect((await api.post("/api/v1/credentials", { data: body() })).status()).toBe(201);

  await ageSessions(db, admin.id, 6);
  const refused = await api.post("/api/v1/credentials", { data: body() });
  expect(refused.status()).toBe(403);
  expect(await refused.json()).toMatchObject({ error: "step_up_required", message: expect.stringMatching(/^Confirm it is you to add a vault credential/) });
  const keyRefused = await api.post("/api/v1/api-keys", { data: { name: unique("k"), role: "admin" } });
  expect(keyRefused.status()).toBe(403);
  expect(await db.apiKey.count({ where: { createdById: admin.id } })).toBe(0);

  expect((await api.post("/api/v1/session/reauthenticate", { data: { password: "wrong wrong wrong" } })).status()).toBe(403);
  // Cross-site re-authentication is refused like any other change.
  expect((await api.post("/api/v1/session/reauthenticate", { data: { password: admin.password }, headers: { origin: "https://evil.example" } })).status()).toBe(403);
  const ok = await api.post("/api/v1/session/reauthenticate", { data: { password: admin.password } });
  expect(ok.status()).toBe(200);
  expect(Date.now() - Date.parse(((await ok.json()) as { authenticatedAt: string }).authenticatedAt)).toBeLessThan(60_000);
  expect((await api.post("/api/v1/credentials", { data: body() })).status()).toBe(201);

  await ageSessions(db, admin.id, 6);
  expect((await api.post("/api/v1/credentials", { data: body() })).status()).toBe(403);
});

test("a copy of the session cookie is not made fresh by the person's re-authentication: it is signed out", async ({ playwright, baseURL, api, createUser, db }) => {
  const admin = await createUser("admin");
  await signInViaApi(api, admin.email, admin.password);
  // The thief holds the very same cookie (another local port, a proxy log, malware in the profile).
  const thief = await playwright.request.newContext({ baseURL, extraHTTPHeaders: { origin: new URL(baseURL!).origin }, storageState: await api.storageState() });
  try {
    const mintKey = (ctx: typeof api) => ctx.post("/api/v1/api-keys", { data: { name: unique("outlives-the-session"), role: "admin" } });
    await ageSessions(db, admin.id, 10);
    expect((await mintKey(thief)).status()).toBe(403); // step_up_required: so far, so good

    // The person confirms their password (the dashboard asked them to, for something else).
    const ok = await api.post("/api/v1/session/reauthenticate", { data: { password: admin.password } });
    expect(ok.status()).toBe(200);
    expect(ok.headers()["set-cookie"]).toMatch(/authjs\.session-token=/);

    // Before, the copy was fresh too and minted an admin API key that outlived any sign-out.
    const stolen = await mintKey(thief);
    expect(stolen.status()).toBe(401);
    expect((await thief.get("/api/v1/me")).status()).toBe(401);
    expect(await db.apiKey.count({ where: { createdById: admin.id } })).toBe(0);
    // The person's own browser carries on with the new cookie, fresh.
    expect((await mintKey(api)).status()).toBe(201);
    expect(await db.session.count({ where: { userId: admin.id } })).toBe(1);
  } finally {
    await thief.dispose();
  }
});

test("API keys need no step-up, and their changes say so in the audit", async ({ playwright, baseURL, api, createUser, db }) => {
  const admin = await createUser("admin");
  await signInViaApi(api, admin.email, admin.password);
  const { key } = (await (await api.post("/api/v1/api-keys", { data: { name: unique("ci"), role: "admin" } })).json()) as { key: string };
  const ci = await playwright.request.newContext({ baseURL, extraHTTPHeaders: { authorization: `Bearer ${key}` } });
  const created = await ci.post("/api/v1/credentials", { data: { name: unique("by-key"), host: `${unique("h")}.example.test`, headerTemplate: "X-Key: {secret}", secret: "key-secret-value", environments: "*" } });
  expect(created.status()).toBe(201);
  const { credential } = (await created.json()) as { credential: { id: string } };
  const event = await db.auditEvent.findFirstOrThrow({ where: { type: "credential.added", data: { path: ["credentialId"], equals: credential.id } } });
  expect((event.data as { stepUp: unknown }).stepUp).toEqual({ exempt: "api_key" });
  // An API key cannot "re-authenticate".
  expect((await ci.post("/api/v1/session/reauthenticate", { data: { password: admin.password } })).status()).toBe(403);
  await ci.dispose();
});
