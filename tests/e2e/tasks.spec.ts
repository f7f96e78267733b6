import { verifyTaskTokenNow } from "../../lib/identity/task-tokens";
import { unique } from "../support/factories";
import { expect, signInViaApi, test } from "./support/fixtures";

const identity = { issuer: "bulkhead", audience: "bulkhead-proxy" };

test("an admin creates a task, mints a token shown once, and ends the task", async ({ page, createUser, db }, testInfo) => {
  const admin = await createUser("admin");
  const agent = await db.agent.create({ data: { name: unique("deployer"), ownerId: admin.id } });
  const inventory = "entries:\n  - environment: staging\n    service: railway\n    resources: [env_staging]\n";
  await db.setting.upsert({ where: { key: "inventory.yaml" }, create: { key: "inventory.yaml", value: inventory }, update: { value: inventory } });
  await signInViaApi(page.request, admin.email, admin.password);

  await page.goto(`/tasks/new?agent=${agent.id}`);
  await page.getByLabel("Purpose").fill("Check staging deploy credentials");
  await page.getByLabel("Time to live").fill("30m");
  await page.getByLabel("Allowlist policy (YAML)").fill("unlisted: deny\nrules:\n  - service: railway\n    effects: [teleport]\n");
  await page.getByRole("button", { name: "Create task" }).click();
  await expect(page.locator("#policyYaml-error")).toContainText("rules[0].effects[0]");

  await page.getByLabel("Allowlist policy (YAML)").fill("unlisted: deny\nrules:\n  - service: railway\n    environments: [staging]\n    effects: [read]\n");
  await page.getByRole("button", { name: "Create task" }).click();
  await expect(page.getByRole("heading", { name: "Check staging deploy credentials" })).toBeVisible();
  await expect(page.getByTestId("task-status")).toHaveText("active");
  const taskId = page.url().split("/").pop()!;

  await page.getByRole("button", { name: "Mint token" }).click();
  const tokenBox = page.getByTestId("minted-token");
  await expect(tokenBox).toBeVisible();
  const token = await tokenBox.inputValue();
  expect(token.split(".")).toHaveLength(3);
  await expect(verifyTaskTokenNow(db, identity, token)).resolves.toMatchObject({ taskId, agentId: agent.id });
  // What the agent does with it: the proxy URL with the token as its password, and the CA to trust.
  const settings = await page.getByTestId("proxy-settings").inputValue();
  expect(settings).toMatch(new RegExp(`^export HTTPS_PROXY=http://agent:${token.replace(/[.]/g, "\\.")}@127\\.0\\.0\\.1:\\d+\n`));
  await expect(page.getByRole("link", { name: "download the CA certificate" })).toHaveAttribute("href", "/api/v1/ca");

  const shot = testInfo.outputPath("token-minted.png");
  await page.screenshot({ path: shot, fullPage: true });
  await testInfo.attach("token-minted", { path: shot, contentType: "image/png" });

  // Shown once: after a reload the token is nowhere in the page, only its jti.
  await page.reload();
  await expect(page.getByTestId("minted-token")).toHaveCount(0);
  expect(await page.content()).not.toContain(token);
  await expect(page.getByRole("cell", { name: "valid" })).toBeVisible();

  page.once("dialog", (d) => d.accept());
  await page.getByRole("button", { name: "End task" }).click();
  await expect(page.getByTestId("task-status")).toHaveText("ended");
  await expect(page.getByRole("button", { name: "Mint token" })).toHaveCount(0);
  await expect(verifyTaskTokenNow(db, identity, token)).rejects.toMatchObject({ reason: "task_revoked" });
});

test("task and token route handlers check roles; a minted token is returned once", async ({ api, createUser, db }) => {
  const admin = await createUser("admin");
  const auditor = await createUser("auditor");
  const agent = await db.agent.create({ data: { name: unique("api-tasks"), ownerId: admin.id } });

  expect((await api.post("/api/v1/tasks", { data: { agentId: agent.id, purpose: "x y z" } })).status()).toBe(401);

  await signInViaApi(api, auditor.email, auditor.password);
  expect((await api.post("/api/v1/tasks", { data: { agentId: agent.id, purpose: "auditor try" } })).status()).toBe(403);
  expect((await api.get("/api/v1/tasks")).status()).toBe(200);
  expect((await api.post("/api/v1/keys/rotate")).status()).toBe(403);
  await api.post("/api/auth/signout", { form: { csrfToken: ((await (await api.get("/api/auth/csrf")).json()) as { csrfToken: string }).csrfToken } });

  await signInViaApi(api, admin.email, admin.password);
  const created = await api.post("/api/v1/tasks", { data: { agentId: agent.id, purpose: "api task", ttl: "10m" } });
  expect(created.status()).toBe(201);
  const { task } = (await created.json()) as { task: { id: string } };
  const minted = await api.post(`/api/v1/tasks/${task.id}/tokens`);
  expect(minted.status()).toBe(201);
  const { token, jti } = (await minted.json()) as { token: string; jti: string };
  const list = await (await api.get(`/api/v1/tasks/${task.id}/tokens`)).text();
  expect(list).toContain(jti);
  expect(list).not.toContain(token);
  expect((await api.post(`/api/v1/tokens/${jti}/revoke`)).status()).toBe(200);
  await expect(verifyTaskTokenNow(db, identity, token)).rejects.toMatchObject({ reason: "jti_revoked" });
  expect((await api.post(`/api/v1/tasks/${task.id}/end`)).status()).toBe(200);

  const jwks = (await (await api.get("/.well-known/jwks.json")).json()) as { keys: Array<Record<string, unknown>> };
  expect(jwks.keys.length).toBeGreaterThan(0);
  for (const k of jwks.keys) expect(k).not.toHaveProperty("d");
});

test("a task is created with a scope; its page shows scope and policy side by side and warns about a rule outside the scope", async ({ page, createUser, db }) => {
  const admin = await createUser("admin");
  const agent = await db.agent.create({ data: { name: unique("scoped"), ownerId: admin.id } });
  // The inventory knows staging (otherwise the page rightly warns that nothing is ever staging).
  const inventory = "entries:\n  - environment: staging\n    service: railway\n    resources: [env_staging, vol_stg]\n";
  await db.setting.upsert({ where: { key: "inventory.yaml" }, create: { key: "inventory.yaml", value: inventory }, update: { value: inventory } });
  await signInViaApi(page.request, admin.email, admin.password);

  await page.goto(`/tasks/new?agent=${agent.id}`);
  await page.getByLabel("Purpose").fill("Read staging only");
  // A bad scope is refused with a sentence, and what was typed stays.
  await page.getByLabel("Scope").fill("railway:staging:everything");
  await page.getByLabel("Allowlist policy (YAML)").fill("unlisted: deny\nrules:\n  - service: railway\n    environments: [staging]\n    effects: [read]\n");
  await page.getByRole("button", { name: "Create task" }).click();
  await expect(page.locator("#scope-error")).toContainText("the effect must be one of read, write, destructive, irreversible");
  await expect(page.getByLabel("Scope")).toHaveValue("railway:staging:everything");

  await page.getByLabel("Scope").fill("Railway:Staging:read");
  await page.getByLabel("Allowlist policy (YAML)").fill(
    "unlisted: deny\nrules:\n  - id: stg-read\n    service: railway\n    environments: [staging]\n    effects: [read]\n  - id: prod-delete\n    service: railway\n    environments: [production]\n    effects: [irreversible]\n    waive_approval: true\n",
  );
  await page.getByRole("button", { name: "Create task" }).click();
  await expect(page.getByRole("heading", { name: "Read staging only" })).toBeVisible();
  const taskId = page.url().split("/").pop()!;
  expect((await db.task.findUniqueOrThrow({ where: { id: taskId } })).scope).toBe("railway:staging:read");

  const scope = page.getByTestId("task-scope");
  await expect(scope.getByTestId("scope-entry")).toHaveCount(1);
  await expect(scope.getByTestId("scope-entry")).toContainText("railway");
  await expect(scope.getByTestId("scope-entry")).toContainText("staging");
  await expect(scope.getByTestId("scope-entry")).toContainText("read");
  await expect(page.getByTestId("blast-radius")).toContainText("irreversible");
  const warnings = page.getByTestId("scope-warnings");
  await expect(warnings).toContainText("rule prod-delete allows irreversible on railway/production, outside the task's scope (railway:staging:read)");
  await expect(warnings).not.toContainText("stg-read");

  // The simulator checks the scope first, as the proxy does: the policy's allow rule does not apply.
  await page.getByLabel("URL").fill("https://backboard.railway.com/graphql/v2");
  await page.getByLabel("Body").fill('{"query":"mutation { volumeDelete(volumeId: \\"vol_prod\\") }"}');
  await page.getByRole("button", { name: "Simulate" }).click();
  await expect(page.getByTestId("simulation-reason")).toContainText("token_scope: irreversible `volumeDelete` on production volume vol_prod lies outside the task's scope (railway:staging:read)");

  // Saving a policy inside the scope clears the warning; the scope itself never changes.
  await page.locator("#policyYaml").fill("unlisted: deny\nrules:\n  - id: stg-read\n    service: railway\n    environments: [staging]\n    effects: [read]\n");
  await page.getByRole("button", { name: "Save policy" }).click();
  await expect(page.getByText("Saved as version 2")).toBeVisible();
  await page.reload();
  await expect(page.getByTestId("scope-warnings")).toHaveCount(0);
  expect((await db.task.findUniqueOrThrow({ where: { id: taskId } })).scope).toBe("railway:staging:read");
});

test("Copy token says 'Copied' only when the clipboard took it; otherwise it selects the token and says to copy it by hand", async ({ page, createUser, db, api }) => {
  const admin = await createUser("admin");
  const agent = await db.agent.create({ data: { name: unique("copier"), ownerId: admin.id } });
  await signInViaApi(api, admin.email, admin.password);
  const task = (await (await api.post("/api/v1/tasks", { data: { agentId: agent.id, purpose: "copy the token", ttl: "30m" } })).json()) as { task: { id: string } };
  await signInViaApi(page.request, admin.email, admin.password);
  // A browser that refuses the clipboard (plain http away from loopback has no clipboard API at all).
  await page.addInitScript(() => {
    Object.defineProperty(navigator, "clipboard", { value: { writeText: () => Promise.reject(new DOMException("Write permission denied.", "NotAllowedError")) } });
  });
  await page.goto(`/tasks/${task.task.id}`);
  await page.getByRole("button", { name: "Mint token" }).click();
  const box = page.getByTestId("minted-token");
  const token = await box.inputValue();
  await page.getByRole("button", { name: "Copy token" }).click();
  await expect(page.getByRole("alert").filter({ hasText: "did not let the page copy it" })).toBeVisible();
  await expect(page.getByRole("button", { name: "Copied" })).toHaveCount(0);
  expect(await box.evaluate((el: HTMLTextAreaElement) => el.value.slice(el.selectionStart, el.selectionEnd))).toBe(token);
});

test("a policy template does not replace a policy the person wrote without asking", async ({ page, createUser, db }) => {
  const admin = await createUser("admin");
  const agent = await db.agent.create({ data: { name: unique("templated"), ownerId: admin.id } });
  await signInViaApi(page.request, admin.email, admin.password);
  await page.goto(`/tasks/new?agent=${agent.id}`);
  const policy = page.getByLabel("Allowlist policy (YAML)");
  // The starting text is replaced at once.
  await page.getByText("Start from a template").click();
  await page.getByRole("button", { name: "Read-only on one service" }).click();
  await expect(policy).toHaveValue(/railway-read/);
  // Written by hand: asked first, and kept when the answer is no.
  const mine = "unlisted: deny\nrules:\n  - id: mine\n    service: github\n    effects: [read]\n";
  await policy.fill(mine);
  const asked: string[] = [];
  page.once("dialog", (d) => {
    asked.push(d.message());
    void d.dismiss();
  });
  await page.getByRole("button", { name: "Hold everything for approval" }).click();
  await expect(policy).toHaveValue(mine);
  expect(asked).toEqual(['Replace the policy you wrote with the template "Hold everything for approval"?']);
  page.once("dialog", (d) => void d.accept());
  await page.getByRole("button", { name: "Hold everything for approval" }).click();
  await expect(policy).not.toHaveValue(mine);
});

test("a refused time to live is said once, at its field, and the alert points to it", async ({ page, createUser, db }) => {
  const admin = await createUser("admin");
  const agent = await db.agent.create({ data: { name: unique("ttl-once"), ownerId: admin.id } });
  await signInViaApi(page.request, admin.email, admin.password);
  await page.goto(`/tasks/new?agent=${agent.id}`);
  await page.getByLabel("Purpose").fill("A task that would live for a year");
  await page.getByLabel("Time to live").fill("365d");
  await page.getByRole("button", { name: "Create task" }).click();
  await expect(page.locator("#ttl-error")).toContainText("The time to live must be between 1m and");
  await expect(page.getByText(/The time to live must be between 1m and/)).toHaveCount(1);
  await expect(page.locator("form [role=alert]")).toHaveText("Please correct the highlighted field.");
  await expect(page.getByLabel("Purpose")).toHaveValue("A task that would live for a year");
  expect(await db.task.count({ where: { agentId: agent.id } })).toBe(0);
});
