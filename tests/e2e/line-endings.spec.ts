import { unique } from "../support/factories";
import { expect, signInViaApi, test } from "./support/fixtures";

/**
 * A browser submits a textarea's text with \r\n line ends. A policy typed in the task form was
 * kept that way and the task report showed `\u000d` at the end of every line of it.
 */
test("a policy typed in the task form is kept with plain line ends and reads cleanly in the report", async ({ page, createUser, db }) => {
  const admin = await createUser("admin");
  const agent = await db.agent.create({ data: { name: unique("line-ends"), ownerId: admin.id } });
  await signInViaApi(page.request, admin.email, admin.password);

  await page.goto(`/tasks/new?agent=${agent.id}`);
  await page.getByLabel("Purpose").fill("Read GitHub issues");
  await page.getByLabel("Time to live").fill("30m");
  const policy = "mode: enforce\nunlisted: deny\nrules:\n  - id: github-read\n    service: github\n    effects: [read]\n";
  await page.getByLabel("Allowlist policy (YAML)").fill(policy);
  await page.getByRole("button", { name: "Create task" }).click();
  await expect(page.getByRole("heading", { name: "Read GitHub issues" })).toBeVisible();
  const taskId = page.url().split("/").pop()!;

  expect((await db.task.findUniqueOrThrow({ where: { id: taskId } })).policyYaml).toBe(policy);

  await page.goto(`/tasks/${taskId}/report`);
  const versions = page.locator("section", { has: page.getByRole("heading", { name: /^Policy versions/ }) });
  await expect(versions).toContainText("id: github-read");
  await expect(versions).not.toContainText("u000d");
});
