import { test, expect, signInViaApi } from "./support/fixtures";
import { unique } from "../support/factories";

test("an admin signs in with the form, registers an agent, finds it and suspends it", async ({ page, createUser, db }, testInfo) => {
  const admin = await createUser("admin");

  await page.goto("/agents");
  await expect(page).toHaveURL(/\/login$/);
  await page.getByLabel("Email").fill(admin.email);
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert").filter({ hasText: "Sign-in failed" })).toContainText("the email or password is wrong, or the account is disabled");

  await page.getByLabel("Password").fill(admin.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/agents$/);

  await page.getByRole("link", { name: "Register agent" }).click();
  await page.getByRole("button", { name: "Register agent" }).click();
  // Browser validation stops an empty name; a bad one reaches the server and gets a message.
  await page.getByLabel("Name").fill("bad name!");
  await page.getByRole("button", { name: "Register agent" }).click();
  await expect(page.locator("#name-error")).toContainText("Use letters, digits");

  const name = unique("deploy-bot");
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Description").fill("Deploys the staging app <b>bold?</b>");
  await page.getByRole("button", { name: "Register agent" }).click();
  await expect(page.getByRole("heading", { name })).toBeVisible();
  // Agent-controlled text is escaped, never rendered as markup.
  await expect(page.getByText("Deploys the staging app <b>bold?</b>")).toBeVisible();
  // The next step is on the page: a task for this agent, with the agent already chosen.
  const agentUrl = page.url();
  await page.getByRole("link", { name: "Create a task for it" }).click();
  await expect(page).toHaveURL(/\/tasks\/new\?agent=/);
  await expect(page.getByLabel("Agent", { exact: true })).toHaveValue(agentUrl.split("/").at(-1)!);
  await page.goto(agentUrl);
  await expect(page.getByRole("link", { name: "Its tasks" })).toHaveAttribute("href", `/tasks?agent=${agentUrl.split("/").at(-1)}`);
  // The filtered list says whose tasks it shows, and its empty state offers a task for this agent.
  await page.getByRole("link", { name: "Its tasks" }).click();
  await expect(page.getByTestId("tasks-filter")).toContainText(`Tasks of the agent ${name}.`);
  await expect(page.getByText(`${name} has no tasks yet`)).toBeVisible();
  await expect(page.getByRole("main").getByRole("link", { name: "Create a task for it" })).toHaveAttribute("href", `/tasks/new?agent=${agentUrl.split("/").at(-1)}`);
  await page.goto(agentUrl);

  await page.getByRole("link", { name: "Agents" }).click();
  await page.getByLabel("Search agents").fill(name);
  await page.getByRole("button", { name: "Search" }).click();
  await expect(page.getByRole("row")).toHaveCount(2);
  await page.getByRole("link", { name }).click();

  await expect(page.getByTestId("agent-status")).toHaveText("active");
  // Suspending revokes every active task of the agent for good, so it is asked first; a misclick changes nothing.
  const dialogs: string[] = [];
  page.once("dialog", (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  await page.getByRole("button", { name: "Suspend agent" }).click();
  await expect.poll(() => dialogs).toEqual([expect.stringMatching(/^Suspend this agent\? Its active tasks are revoked/)]);
  await page.reload();
  await expect(page.getByTestId("agent-status")).toHaveText("active");
  expect((await db.agent.findFirstOrThrow({ where: { name } })).status).toBe("active");
  page.once("dialog", (d) => void d.accept());
  await page.getByRole("button", { name: "Suspend agent" }).click();
  await expect(page.getByTestId("agent-status")).toHaveText("suspended");
  await expect(page.getByRole("button", { name: "Reactivate agent" })).toBeVisible();

  const shot = testInfo.outputPath("agent-suspended.png");
  await page.screenshot({ path: shot, fullPage: true });
  await testInfo.attach("agent-suspended", { path: shot, contentType: "image/png" });
});

test("an auditor sees agents but no way to change them", async ({ page, createUser, db }) => {
  const admin = await createUser("admin");
  const auditor = await createUser("auditor");
  const agent = await db.agent.create({ data: { name: unique("watched"), ownerId: admin.id } });

  await signInViaApi(page.request, auditor.email, auditor.password);
  await page.goto("/agents");
  await expect(page.getByRole("link", { name: "Register agent" })).toHaveCount(0);
  await page.goto(`/agents/${agent.id}`);
  await expect(page.getByRole("heading", { name: agent.name })).toBeVisible();
  await expect(page.getByRole("button", { name: /Suspend agent/ })).toHaveCount(0);
  await page.goto("/agents/new");
  await expect(page.getByRole("heading", { name: "Your role does not allow this" })).toBeVisible();
  await page.goto("/users");
  await expect(page.getByRole("heading", { name: "Your role does not allow this" })).toBeVisible();
  await page.goto("/agents/00000000-0000-4000-8000-000000000000");
  await expect(page.getByRole("heading", { name: "Not found" })).toBeVisible();
});
