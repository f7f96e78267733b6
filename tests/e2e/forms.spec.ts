import { unique } from "../support/factories";
import { expect, signInViaApi, test } from "./support/fixtures";

const SENTENCE = /^[A-Z].*[.?!]$/;
const RAW = /Invalid input|expected (string|number)|received|Too (small|big)|NaN|undefined/;

test("the credential form keeps everything typed after a server-side error, except the secret", async ({ page, createUser, db }) => {
  const admin = await createUser("admin");
  await signInViaApi(page.request, admin.email, admin.password);
  await page.goto("/services");
  const name = unique("kept");
  await page.getByLabel("Name", { exact: true }).fill(name);
  await page.getByLabel("Scheme").selectOption("http");
  await page.getByLabel("Host", { exact: true }).fill("user@internal.example.test");
  await page.getByLabel("Port").fill("8443");
  await page.getByLabel("Environments", { exact: true }).fill("*");
  await page.getByLabel("Header template", { exact: true }).fill("X-Api-Key: {secret}");
  await page.getByLabel("Secret", { exact: true }).fill("a-secret-to-type-again");
  await page.getByRole("button", { name: "Add credential" }).click();
  await expect(page.locator("#host-error")).toContainText("user information");
  await expect(page.locator("#host-error")).toHaveText(SENTENCE);

  await expect(page.getByLabel("Name", { exact: true })).toHaveValue(name);
  await expect(page.getByLabel("Scheme")).toHaveValue("http");
  await expect(page.getByLabel("Host", { exact: true })).toHaveValue("user@internal.example.test");
  await expect(page.getByLabel("Port")).toHaveValue("8443");
  await expect(page.getByLabel("Header template", { exact: true })).toHaveValue("X-Api-Key: {secret}");
  await expect(page.getByLabel("Secret", { exact: true })).toHaveValue("");

  // A template rejected by the server stays in the field for fixing, and is not sent back.
  await page.getByLabel("Host", { exact: true }).fill("internal.example.test");
  await page.getByLabel("Header template", { exact: true }).fill("X-Api-Key {secret}");
  await page.getByLabel("Secret", { exact: true }).fill("a-secret-to-type-again");
  await page.getByRole("button", { name: "Add credential" }).click();
  await expect(page.locator("#headerTemplate-error")).toHaveText(SENTENCE);
  await expect(page.getByLabel("Header template", { exact: true })).toHaveValue("X-Api-Key {secret}");
  await expect(page.getByLabel("Scheme")).toHaveValue("http");

  await page.getByLabel("Header template", { exact: true }).fill("X-Api-Key: {secret}");
  await page.getByLabel("Secret", { exact: true }).fill("a-secret-to-type-again");
  await page.getByRole("button", { name: "Add credential" }).click();
  await expect(page.getByRole("status").filter({ hasText: `Added ${name}.` })).toBeVisible();
  const stored = await db.credential.findFirstOrThrow({ where: { name } });
  expect(stored).toMatchObject({ scheme: "http", host: "internal.example.test", port: 8443, headerTemplate: "X-Api-Key: {secret}" });
  // After success the form is empty again, with its defaults.
  await expect(page.getByLabel("Name", { exact: true })).toHaveValue("");
  await expect(page.getByLabel("Scheme")).toHaveValue("https");
});

test("form errors are sentences, and the other fields keep their values", async ({ page, createUser, db }) => {
  const admin = await createUser("admin");
  await db.agent.create({ data: { name: unique("forms-agent"), ownerId: admin.id } });
  await signInViaApi(page.request, admin.email, admin.password);

  await page.goto("/settings/api-keys");
  const keyName = unique("k");
  await page.getByLabel("Name", { exact: true }).fill(keyName);
  await page.getByLabel("Role").selectOption("approver");
  await page.getByLabel("Expires in (days)").fill("soon");
  await page.getByRole("button", { name: "Create API key" }).click();
  await expect(page.locator("#expiresInDays-error")).toHaveText(SENTENCE);
  await expect(page.locator("#expiresInDays-error")).not.toHaveText(RAW);
  await expect(page.getByLabel("Role")).toHaveValue("approver");
  await expect(page.getByLabel("Name", { exact: true })).toHaveValue(keyName);

  await page.goto("/settings");
  await page.getByLabel("Maximum task lifetime").fill("forever");
  // The Settings page has several forms, each with its own Save.
  await page.locator("form", { has: page.getByLabel("Maximum task lifetime") }).getByRole("button", { name: "Save" }).click();
  await expect(page.locator("#maxTtl-error")).toHaveText(SENTENCE);
  await expect(page.getByLabel("Maximum task lifetime")).toHaveValue("forever");

  await page.goto("/agents/new");
  await page.getByLabel("Name").fill("has spaces and ünïcode");
  await page.getByLabel("Description").fill("kept description");
  await page.getByRole("button", { name: "Register agent" }).click();
  await expect(page.locator("#name-error")).toHaveText(SENTENCE);
  await expect(page.locator("#name-error")).not.toHaveText(RAW);
  await expect(page.getByLabel("Description")).toHaveValue("kept description");

  await page.goto("/tasks/new");
  await page.getByLabel("Purpose").fill("ok");
  await page.getByLabel("Time to live").fill("a while");
  await page.getByRole("button", { name: "Create task" }).click();
  await expect(page.locator("#purpose-error")).toHaveText(SENTENCE);
  await expect(page.getByLabel("Time to live")).toHaveValue("a while");
  // Focus lands on the first field to fix (the disabled button dropped it to the page before).
  await expect(page.getByLabel("Purpose")).toBeFocused();
  await page.getByLabel("Purpose").fill("Check the staging volumes");
  await page.getByRole("button", { name: "Create task" }).click();
  await expect(page.locator("#ttl-error")).toHaveText(SENTENCE);
  await expect(page.getByLabel("Time to live")).toBeFocused();
  await expect(page.locator("#ttl-error")).not.toHaveText(RAW);
  await expect(page.getByLabel("Purpose")).toHaveValue("Check the staging volumes");
});

test("the sign-in page the first-admin link leads to says that the account is ready", async ({ page }) => {
  // completeSetupAction redirects here once the first admin exists (app/setup/[token]/actions.ts).
  await page.goto("/login?setup=done");
  await expect(page.getByRole("status")).toHaveText("The first admin account is ready. Sign in with the email and password you just chose.");
  await page.goto("/login");
  await expect(page.getByRole("status")).toHaveCount(0);
});

test("a setup link followed once an account exists says that setup is done and leads to sign-in", async ({ page }) => {
  // The test dashboard has accounts: any setup link, used or not, opens nothing now.
  await page.goto("/setup/not-a-token");
  await expect(page.getByText("Setup is done: Bulkhead has an account already, and this link opens nothing.")).toBeVisible();
  await page.getByRole("link", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/login$/);
});
