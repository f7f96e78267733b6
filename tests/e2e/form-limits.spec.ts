import { unique } from "../support/factories";
import { expect, signInViaApi, test } from "./support/fixtures";

/** Sets a textarea's value the way typing or pasting does (Playwright's fill types too slowly for megabytes). */
async function paste(locator: import("@playwright/test").Locator, value: string) {
  await locator.evaluate((el, v) => {
    const setter = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, "value")!.set!;
    setter.call(el, v);
    el.dispatchEvent(new Event("input", { bubbles: true }));
  }, value);
}

test("a form too large to send is refused in the form, nothing sent and nothing typed lost", async ({ page, createUser, db }) => {
  const admin = await createUser("admin");
  const agent = await db.agent.create({ data: { name: unique("big"), ownerId: admin.id } });
  await signInViaApi(page.request, admin.email, admin.password);
  await page.goto(`/tasks/new?agent=${agent.id}`);
  await page.getByLabel("Purpose").fill("a policy pasted twice over");
  const policy = page.getByLabel("Allowlist policy (YAML)");
  const big = "unlisted: deny\nrules: []\n" + `# ${"x".repeat(97)}\n`.repeat(15_000);
  await paste(policy, big);
  const posts: string[] = [];
  page.on("request", (r) => {
    if (r.method() === "POST") posts.push(r.url());
  });
  await page.getByRole("button", { name: "Create task" }).click();
  await expect(page.getByText("This form is too large to send: 1.43 MiB, and the dashboard takes at most 1.00 MiB a submission.", { exact: false }).first()).toBeVisible();
  await expect(page.locator("#policyYaml-error")).toContainText("This field is 1.43 MiB: shorten it.");
  expect(await policy.inputValue()).toBe(big);
  await expect(page.getByLabel("Purpose")).toHaveValue("a policy pasted twice over");
  expect(posts).toEqual([]);
  expect(page.url()).toContain("/tasks/new");
});

test("a submission that gets no answer is said in the form, with what was typed kept; sent again, it goes through", async ({ page, createUser, db }) => {
  const admin = await createUser("admin");
  const agent = await db.agent.create({ data: { name: unique("cut"), ownerId: admin.id } });
  await signInViaApi(page.request, admin.email, admin.password);
  await page.goto(`/tasks/new?agent=${agent.id}`);
  await page.getByLabel("Purpose").fill("sent while the dashboard was away");
  await page.getByLabel("Allowlist policy (YAML)").fill("unlisted: deny\nrules: []\n");
  // The dashboard away: the action's request never gets an answer.
  await page.route("**/tasks/new**", (route) => (route.request().method() === "POST" ? route.abort("connectionreset") : route.continue()));
  await page.getByRole("button", { name: "Create task" }).click();
  await expect(page.getByText("The dashboard did not answer this submission", { exact: false }).first()).toBeVisible();
  await expect(page.getByLabel("Purpose")).toHaveValue("sent while the dashboard was away");
  await expect(page.getByRole("heading", { name: "This page could not be shown" })).toHaveCount(0);
  await page.unroute("**/tasks/new**");
  await page.getByRole("button", { name: "Create task" }).click();
  await expect(page.getByRole("heading", { name: "sent while the dashboard was away" })).toBeVisible();
});
