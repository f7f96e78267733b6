import { unique } from "../support/factories";
import { expect, signInViaApi, test } from "./support/fixtures";

test("the task page shows the blast radius, simulates the PocketOS request, and edits the policy with located errors", async ({ page, createUser, db }, testInfo) => {
  const admin = await createUser("admin");
  // Policies may only name environments that exist: staging comes from the inventory.
  const inventory = "entries:\n  - environment: staging\n    service: railway\n    resources: [env_staging]\n";
  await db.setting.upsert({ where: { key: "inventory.yaml" }, create: { key: "inventory.yaml", value: inventory }, update: { value: inventory } });
  const agent = await db.agent.create({ data: { name: unique("ops-bot"), ownerId: admin.id } });
  const task = await db.task.create({
    data: {
      agentId: agent.id,
      purpose: "Check staging credentials",
      policyYaml: "unlisted: deny\nrules:\n  - id: railway-staging-read\n    service: railway\n    environments: [staging]\n    effects: [read]\n",
      expiresAt: new Date(Date.now() + 3600_000),
    },
  });
  await signInViaApi(page.request, admin.email, admin.password);
  await page.goto(`/tasks/${task.id}`);

  const radius = page.getByTestId("blast-radius");
  await expect(radius).toContainText("railway");
  await expect(radius).toContainText("staging");

  await page.getByLabel("Method").selectOption("POST");
  await page.getByLabel("URL").fill("https://backboard.railway.com/graphql/v2");
  await page.getByLabel("Body").fill('{"query":"mutation { volumeDelete(volumeId: \\"vol_prod_123\\") }"}');
  await page.getByRole("button", { name: "Simulate" }).click();
  await expect(page.getByTestId("simulation")).toContainText("deny");
  await expect(page.getByTestId("simulation-reason")).toContainText("volumeDelete");
  await expect(page.getByTestId("simulation")).toContainText("irreversible");
  // A path alone is a mistake in the form, not a request the proxy "denies".
  await page.getByLabel("URL").fill("/graphql/v2");
  await page.getByRole("button", { name: "Simulate" }).click();
  await expect(page.getByRole("alert").filter({ hasText: "Enter an absolute URL, with its scheme and host" })).toBeVisible();
  await expect(page.getByTestId("simulation")).toHaveCount(0);
  await expect(page.getByLabel("URL")).toHaveValue("/graphql/v2");
  await page.getByLabel("URL").fill("https://backboard.railway.com/graphql/v2");
  await page.getByRole("button", { name: "Simulate" }).click();
  await expect(page.getByTestId("simulation")).toContainText("irreversible");

  const shot = testInfo.outputPath("policy-simulator.png");
  await page.screenshot({ path: shot, fullPage: true });
  await testInfo.attach("policy-simulator", { path: shot, contentType: "image/png" });

  await page.getByLabel("Policy (YAML)").fill("unlisted: deny\nrules:\n  - service: railway\n    effects: [obliterate]\n");
  await page.getByRole("button", { name: "Save policy" }).click();
  await expect(page.locator("#policyYaml-error")).toContainText("rules[0].effects[0]");
  expect((await db.task.findUniqueOrThrow({ where: { id: task.id } })).policyVersion).toBe(1);

  // A typo in a deny rule would make a rule that never applies: refused, with a hint.
  await page.getByLabel("Policy (YAML)").fill("unlisted: deny\nrules:\n  - service: railwy\n    operations: [volumeDelete]\n    decision: deny\n");
  await page.getByRole("button", { name: "Save policy" }).click();
  await expect(page.locator("#policyYaml-error")).toContainText('did you mean "railway"');
  expect((await db.task.findUniqueOrThrow({ where: { id: task.id } })).policyVersion).toBe(1);

  await page.getByLabel("Policy (YAML)").fill("unlisted: deny\nrules:\n  - service: railway\n    environments: [staging]\n    effects: [read, write]\n");
  await page.getByRole("button", { name: "Save policy" }).click();
  await expect(page.getByRole("status")).toContainText("version 2");
  expect((await db.task.findUniqueOrThrow({ where: { id: task.id } })).policyVersion).toBe(2);

  // A stored policy whose service has since disappeared: the page says the proxy refuses the task.
  const orphan = await db.task.create({
    data: { agentId: agent.id, purpose: "Uses a removed service", policyYaml: "rules:\n  - service: retired-billing\n    effects: [read]\n", expiresAt: new Date(Date.now() + 3600_000) },
  });
  await page.goto(`/tasks/${orphan.id}`);
  await expect(page.getByTestId("policy-stale")).toContainText('service "retired-billing" does not exist');
});

test("admins add custom services and the inventory in YAML; mistakes are explained", async ({ page, createUser, db }) => {
  const admin = await createUser("admin");
  await signInViaApi(page.request, admin.email, admin.password);
  await page.goto("/services");
  const id = unique("billing").toLowerCase();
  const form = page.getByTestId("service-form");
  await form.getByLabel("Add or replace a service (YAML)").fill(`id: ${id}\nhosts: [${id}.example.com]\nprotocol: carrier-pigeon\n`);
  await form.getByRole("button", { name: "Save service" }).click();
  await expect(form.getByRole("alert")).toContainText("protocol");
  await form.getByLabel("Add or replace a service (YAML)").fill(`id: ${id}\nhosts: [${id}.example.com]\nprotocol: rest\n`);
  await form.getByRole("button", { name: "Save service" }).click();
  await expect(form.getByRole("status")).toContainText("Saved");
  expect(await db.service.count({ where: { name: id } })).toBe(1);

  const inv = page.getByTestId("inventory-form");
  await inv.getByLabel("Inventory (YAML)").fill("entries:\n  - environment: staging\n    service: railway\n    resources: [env_staging]\n");
  await inv.getByRole("button", { name: "Save inventory" }).click();
  await expect(inv.getByRole("status")).toContainText("Saved");
});

// Text typed into a controlled field before React hydrates is lost or garbled under React's own
// state; the editor refuses typing until then. Held back here by withholding the page's scripts.
test("the policy editor is read-only until the page's script has taken over, then editable", async ({ page, createUser, db }) => {
  const admin = await createUser("admin");
  const agent = await db.agent.create({ data: { name: unique("hydrate-bot"), ownerId: admin.id } });
  const task = await db.task.create({ data: { agentId: agent.id, purpose: "hydration", policyYaml: "unlisted: deny\nrules: []\n", expiresAt: new Date(Date.now() + 3600_000) } });
  await signInViaApi(page.request, admin.email, admin.password);
  await page.route("**/_next/static/**/*.js", (route) => route.abort());
  await page.goto(`/tasks/${task.id}`);
  await expect(page.getByLabel("Policy (YAML)")).toHaveValue("unlisted: deny\nrules: []\n");
  await expect(page.getByLabel("Policy (YAML)")).not.toBeEditable();
  await expect(page.getByLabel("Body")).not.toBeEditable();

  await page.unroute("**/_next/static/**/*.js");
  await page.goto(`/tasks/${task.id}`);
  await expect(page.getByLabel("Policy (YAML)")).toBeEditable();
  await page.getByLabel("Policy (YAML)").fill("unlisted: deny\nrules: []\n# typed\n");
  await expect(page.getByLabel("Policy (YAML)")).toHaveValue("unlisted: deny\nrules: []\n# typed\n");
});

// Two people with the same task (or the inventory) open: the second save replaced the first
// without a word, a deny rule the first added included.
test("a save over a policy or inventory changed since the page was opened is refused, and the other's change kept", async ({ page, context, createUser, db }) => {
  const admin = await createUser("admin");
  const agent = await db.agent.create({ data: { name: unique("two-tabs"), ownerId: admin.id } });
  const task = await db.task.create({ data: { agentId: agent.id, purpose: "two editors", policyYaml: "unlisted: deny\nrules:\n  - service: github\n    effects: [read]\n", expiresAt: new Date(Date.now() + 3600_000) } });
  await signInViaApi(page.request, admin.email, admin.password);
  const other = await context.newPage();
  await page.goto(`/tasks/${task.id}`);
  await other.goto(`/tasks/${task.id}`);

  const withDeny = "unlisted: deny\nrules:\n  - service: github\n    operations: [delete_repo]\n    decision: deny\n  - service: github\n    effects: [read]\n";
  await page.getByLabel("Policy (YAML)").fill(withDeny);
  await page.getByRole("button", { name: "Save policy" }).click();
  await expect(page.getByRole("status")).toContainText("version 2");

  await other.getByLabel("Policy (YAML)").fill("unlisted: deny\nrules:\n  - service: github\n    effects: [read]\n# tidied\n");
  await other.getByRole("button", { name: "Save policy" }).click();
  await expect(other.locator("#policyYaml-error")).toContainText("now version 2");
  // What was typed stays in the editor, and nothing was saved.
  await expect(other.getByLabel("Policy (YAML)")).toHaveValue(/# tidied/);
  expect(await db.task.findUniqueOrThrow({ where: { id: task.id } })).toMatchObject({ policyVersion: 2, policyYaml: withDeny });

  // The first editor saves again: its page knows the version it saved.
  await page.getByLabel("Policy (YAML)").fill(`${withDeny}# reviewed\n`);
  await page.getByRole("button", { name: "Save policy" }).click();
  await expect(page.getByRole("status")).toContainText("version 3");

  await page.goto("/services");
  await other.goto("/services");
  const mine = "entries:\n  - environment: staging\n    service: railway\n    resources: [env_first]\n";
  await page.getByTestId("inventory-form").getByLabel("Inventory (YAML)").fill(mine);
  await page.getByTestId("inventory-form").getByRole("button", { name: "Save inventory" }).click();
  await expect(page.getByTestId("inventory-form").getByRole("status")).toContainText("Saved");
  const inv = other.getByTestId("inventory-form");
  await inv.getByLabel("Inventory (YAML)").fill("entries:\n  - environment: development\n    service: railway\n    resources: [env_second]\n");
  await inv.getByRole("button", { name: "Save inventory" }).click();
  await expect(inv.getByRole("alert")).toContainText("changed since you opened it");
  expect((await db.setting.findUniqueOrThrow({ where: { key: "inventory.yaml" } })).value).toBe(mine);
});
