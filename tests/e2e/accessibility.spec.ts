import AxeBuilder from "@axe-core/playwright";
import type { Locator, Page } from "@playwright/test";
import pg from "pg";
import { insertEvents } from "../support/audit-events";
import { unique } from "../support/factories";
import { expect, signInViaApi, test } from "./support/fixtures";
import { holdRequest } from "./support/held";
import { startDashboardBehindLink } from "./support/second-dashboard";

/**
 * The dashboard against WCAG 2.1 A and AA, as axe-core checks it in the real browser: every page
 * (signed in and signed out), the states that matter (a form showing its errors, an open
 * confirmation, a held request arriving live), and the approvals path by keyboard alone. No rule
 * is turned off and no element left out: a failure lists each violation with where it is.
 */
const WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];
/**
 * The page's structure as a screen reader user navigates it (by landmark, heading and table
 * header): axe files these rules under best-practice, not under a WCAG tag, so they are named here.
 */
const STRUCTURE = ["landmark-one-main", "landmark-no-duplicate-main", "landmark-main-is-top-level", "landmark-unique", "page-has-heading-one", "heading-order", "empty-table-header", "region"];

/** Fails with every violation axe finds on the page as it is now: rule, impact, help and targets. */
async function expectAccessible(page: Page, what: string): Promise<void> {
  const wcag = await new AxeBuilder({ page }).withTags(WCAG).analyze();
  const structure = await new AxeBuilder({ page }).withRules(STRUCTURE).analyze();
  const violations = [...wcag.violations, ...structure.violations];
  const report = violations.map((v) => {
    const targets = v.nodes.slice(0, 5).map((n) => `    ${n.target.join(" ")}${n.failureSummary ? `\n      ${n.failureSummary.replace(/\n/g, "\n      ")}` : ""}`);
    return `- ${v.id} (${v.impact ?? "unknown"}): ${v.help} [${v.nodes.length} node(s)] ${v.helpUrl}\n${targets.join("\n")}`;
  });
  // Soft: one run lists every page's violations, not only the first page's.
  expect.soft(violations.length, `${what} (${page.url()}) has accessibility violations:\n${report.join("\n")}`).toBe(0);
}

/** Loads `path` and waits for React to have taken the page over (client components rendered). */
async function visit(page: Page, path: string): Promise<void> {
  await page.goto(path);
  await page.waitForLoadState("networkidle").catch(() => undefined);
  await expect(page.locator("h1").first()).toBeVisible();
}

/** Everything the dashboard's pages show, made once: each page then has rows, not an empty state. */
async function seedEverything(db: import("../../lib/db/client").Db, adminId: string) {
  const held = await holdRequest(db, { ownerId: adminId, createdById: adminId, url: "https://backboard.railway.com/graphql/v2", body: JSON.stringify({ query: 'mutation { volumeDelete(volumeId: "vol_prod") }' }) });
  const agent = held.agent;
  const task = await db.task.create({
    data: {
      agentId: agent.id,
      purpose: unique("a11y rotate staging volumes"),
      policyYaml: "unlisted: deny\nrules:\n  - id: railway-staging-read\n    service: railway\n    environments: [staging]\n    effects: [read]\n",
      scope: "railway:staging:read",
      createdById: adminId,
      expiresAt: new Date(Date.now() + 3600_000),
    },
  });
  const sandboxAddress = `10.93.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250) + 1}`;
  await db.sandbox.create({ data: { taskId: task.id, name: unique("a11y-sbx"), kind: "external", sourceAddress: sandboxAddress, addresses: sandboxAddress } });
  const service = `a11y${Date.now().toString(36)}`;
  await db.service.create({ data: { name: service, descriptorYaml: `id: ${service}\nhosts: [${service}.example.test]\nprotocol: rest\n` } });
  await db.credential.create({ data: { name: unique("a11y-cred"), scheme: "https", host: `${unique("a11y")}.example.test`, port: 443, serviceId: "railway", environments: "*", headerTemplate: "Authorization: Bearer {secret}", secretSealed: "v1.not-a-real-envelope", createdById: adminId } });
  await db.apiKey.create({ data: { name: unique("a11y-key"), prefix: unique("a11yk").replace(/[^a-z0-9]/gi, ""), keyHash: unique("a11y-hash"), role: "auditor", createdById: adminId } });
  await db.webhook.create({ data: { name: unique("a11y-hook"), url: "https://hooks.example.com/a11y", events: ["hold", "decided"], secretSealed: "not-a-sealed-secret", createdById: adminId } });
  const pool = new pg.Pool({ connectionString: process.env.E2E_DATABASE_URL!, max: 1 });
  let seq: string;
  try {
    const base = { actorType: "agent", actorId: agent.id, agentId: agent.id, taskId: task.id };
    [seq] = await insertEvents(pool, [
      { ...base, type: "proxy.decision", outcome: "deny", effect: "irreversible", reason: "no rule allows volumeDelete in production", data: { method: "POST", url: "https://backboard.railway.com/graphql/v2", service: "railway", code: "policy_deny", kind: "denied", actions: [{ service: "railway", environment: "production", resource: "vol_prod", operation: "volumeDelete", effect: "irreversible" }] } },
      { ...base, type: "proxy.decision", outcome: "allow", effect: "read", reason: "rule allows project", ruleId: "railway-staging-read", data: { method: "POST", url: "https://backboard.railway.com/graphql/v2", service: "railway", actions: [{ service: "railway", environment: "staging", resource: "vol_stg", operation: "project", effect: "read" }] } },
    ]) as [string];
  } finally {
    await pool.end();
  }
  const cell = (identity: boolean, policy: boolean, isolation: boolean, behaviour: "incident" | "evasive") => ({
    identity,
    policy,
    isolation,
    behaviour,
    expected: "stopped",
    outcome: "stopped",
    layer: identity ? "identity" : "policy",
    reason: "token_scope: volumeDelete is outside the task's scope",
    bulkheadOnPath: true,
    volumesLeft: ["vol_prod", "vol_stg"],
    events: [{ id: "1", seq: "1", type: "proxy.decision", outcome: "deny", summary: "deny [identity] volumeDelete (irreversible, production, vol_prod)" }],
    upstream: [],
  });
  const cells = [true, false].flatMap((i) => [true, false].flatMap((p) => [true, false].flatMap((s) => (["incident", "evasive"] as const).map((b) => cell(i, p, s, b)))));
  await db.replayRun.create({ data: { startedAt: new Date(Date.now() - 60_000), finishedAt: new Date(), commit: "0123456789abcdef0123456789abcdef01234567", passed: true, tableMarkdown: "|", cells } });
  return { agent, task, heldTask: held.task, approval: held.approval, seq: seq! };
}

test("every signed-in page of the dashboard meets WCAG 2.1 AA", async ({ page, createUser, db }) => {
  test.setTimeout(240_000);
  const admin = await createUser("admin");
  const { agent, task, heldTask, approval, seq } = await seedEverything(db, admin.id);
  await signInViaApi(page.request, admin.email, admin.password);
  const paths = [
    "/agents",
    "/agents/new",
    `/agents/${agent.id}`,
    "/tasks",
    "/tasks/new",
    `/tasks/new?agent=${agent.id}`,
    `/tasks/${task.id}`,
    `/tasks/${heldTask.id}`,
    `/tasks/${task.id}/report`,
    `/tasks/${task.id}/report/pdf`,
    "/approvals",
    `/approvals/${approval.id}`,
    "/audit",
    `/audit/${seq}`,
    "/sandboxes",
    "/replay",
    "/services",
    "/users",
    "/settings",
    "/settings/api-keys",
    "/settings/webhooks",
    "/account",
    "/no-such-page",
    // A dashboard page's own not-found (an id that is no agent's), inside the dashboard's layout.
    "/agents/00000000-0000-4000-8000-000000000000",
  ];
  for (const path of paths) {
    await visit(page, path);
    await expectAccessible(page, path);
  }
  // A page a role may not open (an auditor on Users) says so in an accessible page too.
  const auditor = await createUser("auditor");
  await page.context().clearCookies();
  await signInViaApi(page.request, auditor.email, auditor.password);
  for (const path of ["/users", "/approvals", `/approvals/${approval.id}`, "/agents"]) {
    await visit(page, path);
    await expectAccessible(page, `${path} as an auditor`);
  }
});

test("at 400% zoom (a 320 px wide window) the pages with tables still meet WCAG 2.1 AA: what scrolls is reachable by keyboard", async ({ page, createUser, db }) => {
  test.setTimeout(180_000);
  const admin = await createUser("admin");
  const { agent, task, approval } = await seedEverything(db, admin.id);
  await signInViaApi(page.request, admin.email, admin.password);
  await page.setViewportSize({ width: 320, height: 640 });
  for (const path of ["/agents", `/agents/${agent.id}`, "/tasks", `/tasks/${task.id}`, `/tasks/${task.id}/report`, "/approvals", `/approvals/${approval.id}`, "/audit", "/sandboxes", "/replay", "/services", "/users", "/settings", "/settings/api-keys", "/settings/webhooks", "/account"]) {
    await visit(page, path);
    await expectAccessible(page, `${path} at 320 px`);
  }
});

test("the signed-out pages meet WCAG 2.1 AA: sign-in, its messages, the setup link and a page that does not exist", async ({ page, createUser }) => {
  for (const path of ["/login", "/login?setup=done", "/setup/not-a-token", "/no-such-page"]) {
    await visit(page, path);
    await expectAccessible(page, path);
  }
  // A failed sign-in shows its error.
  const person = await createUser("auditor");
  await visit(page, "/login");
  await page.getByLabel("Email").fill(person.email);
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: /sign in/i }).click();
  await expect(page.getByRole("alert")).toBeVisible();
  await expectAccessible(page, "the sign-in page after a wrong password");
});

test("the page a dashboard shows when its database is down meets WCAG 2.1 AA", async ({ page, playwright, createUser }) => {
  test.setTimeout(120_000);
  const admin = await createUser("admin");
  const { dashboard, link, stop } = await startDashboardBehindLink();
  const api = await playwright.request.newContext({ baseURL: dashboard.base, extraHTTPHeaders: { origin: dashboard.base } });
  try {
    await signInViaApi(api, admin.email, admin.password);
    await page.context().addCookies((await api.storageState()).cookies);
    link.refuse();
    await visit(page, `${dashboard.base}/agents`);
    await expect(page.getByRole("heading", { name: "Bulkhead cannot reach its database" })).toBeVisible();
    await expectAccessible(page, "the database-unavailable page");
  } finally {
    await api.dispose();
    await stop();
  }
});

/** Submits the form holding `button` and waits for its field errors. */
async function submitAndSeeErrors(page: Page, button: Locator, error: string): Promise<void> {
  await button.click();
  await expect(page.locator(error)).toBeVisible();
}

test("forms showing their validation errors meet WCAG 2.1 AA", async ({ page, createUser, db }) => {
  test.setTimeout(180_000);
  const admin = await createUser("admin");
  const agent = await db.agent.create({ data: { name: unique("a11y-forms"), ownerId: admin.id } });
  await signInViaApi(page.request, admin.email, admin.password);

  await visit(page, "/agents/new");
  await page.getByLabel("Name").fill("has spaces");
  await submitAndSeeErrors(page, page.getByRole("button", { name: "Register agent" }), "#name-error");
  await expectAccessible(page, "the agent form with an error");

  await visit(page, `/tasks/new?agent=${agent.id}`);
  await page.getByLabel("Purpose").fill("ok");
  await page.getByLabel("Time to live").fill("a while");
  await submitAndSeeErrors(page, page.getByRole("button", { name: "Create task" }), "#purpose-error");
  await expectAccessible(page, "the task form with an error");

  await visit(page, "/services");
  await page.getByLabel("Name", { exact: true }).fill(unique("a11y-bad"));
  await page.getByLabel("Host", { exact: true }).fill("user@internal.example.test");
  await page.getByLabel("Port").fill("8443");
  await page.getByLabel("Environments", { exact: true }).fill("*");
  await page.getByLabel("Header template", { exact: true }).fill("X-Api-Key: {secret}");
  await page.getByLabel("Secret", { exact: true }).fill("a-secret");
  await submitAndSeeErrors(page, page.getByRole("button", { name: "Add credential" }), "#host-error");
  await expectAccessible(page, "the credential form with an error");

  await visit(page, "/settings/api-keys");
  await page.getByLabel("Name", { exact: true }).fill(unique("k"));
  await page.getByLabel("Expires in (days)").fill("soon");
  await submitAndSeeErrors(page, page.getByRole("button", { name: "Create API key" }), "#expiresInDays-error");
  await expectAccessible(page, "the API key form with an error");

  await visit(page, "/settings");
  await page.getByLabel("Maximum task lifetime").fill("forever");
  await submitAndSeeErrors(page, page.locator("form", { has: page.getByLabel("Maximum task lifetime") }).getByRole("button", { name: "Save" }), "#maxTtl-error");
  await expectAccessible(page, "the settings form with an error");

  await visit(page, "/settings/webhooks");
  await page.getByLabel("Name").fill(unique("a11y-hook"));
  await page.getByLabel("URL").fill("http://169.254.169.254/latest/meta-data/");
  await submitAndSeeErrors(page, page.getByRole("button", { name: "Add webhook" }), "#url-error");
  await expectAccessible(page, "the webhook form with an error");
});

test("an open decision confirmation and a held request arriving live meet WCAG 2.1 AA", async ({ page, createUser, db }) => {
  const admin = await createUser("admin");
  const approver = await createUser("approver");
  const { approval } = await holdRequest(db, { ownerId: admin.id, url: "https://backboard.railway.com/graphql/v2", body: JSON.stringify({ query: 'mutation { volumeDelete(volumeId: "vol_prod") }' }) });
  await signInViaApi(page.request, approver.email, approver.password);

  await visit(page, `/approvals/${approval.id}`);
  await page.getByRole("button", { name: "Approve…" }).click();
  await expect(page.getByTestId("confirm-decision")).toBeFocused();
  await expectAccessible(page, "the approval card with its confirmation open");

  await visit(page, "/approvals");
  const arriving = await holdRequest(db, { ownerId: admin.id, url: "https://backboard.railway.com/graphql/v2", body: JSON.stringify({ query: 'mutation { volumeDelete(volumeId: "vol_prod") }' }) });
  await expect(page.locator(`[data-approval-id="${arriving.approval.id}"]`)).toBeVisible({ timeout: 15_000 });
  // The arrival is said, not only drawn: the page's live region now counts the new row too.
  const rows = await page.getByTestId("approval-row").count();
  await expect(page.getByRole("status").filter({ hasText: "waiting" })).toHaveText(`${rows} held ${rows === 1 ? "request is" : "requests are"} waiting.`);
  // And the navigation's count is read with its link as words, not a bare number.
  await expect(page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: /^Approvals\s*,\s*\d+ waiting$/ })).toBeVisible();
  await expectAccessible(page, "the approvals page after a held request arrived");
});

/** The focused element, and whether it shows a focus indicator (an outline or a ring). */
async function focused(page: Page) {
  return page.evaluate(() => {
    const el = document.activeElement as HTMLElement | null;
    if (!el || el === document.body) return null;
    const style = getComputedStyle(el);
    const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
    const shadow = style.boxShadow !== "none";
    return { text: (el.innerText || el.getAttribute("aria-label") || "").trim(), tag: el.tagName, inNav: el.closest("nav[aria-label='Main']") !== null, indicated: outline || shadow };
  });
}

/** Presses Tab until `want` holds for the focused element (each stop must show its focus). */
async function tabTo(page: Page, want: (f: NonNullable<Awaited<ReturnType<typeof focused>>>) => boolean, what: string) {
  for (let i = 0; i < 200; i++) {
    await page.keyboard.press("Tab");
    const f = await focused(page);
    if (!f) continue;
    expect(f.indicated, `the focus on ${f.tag} "${f.text}" is visible`).toBe(true);
    if (want(f)) return f;
  }
  throw new Error(`Tab never reached ${what}`);
}

test("by keyboard alone: Tab reaches the main navigation and a held request, whose approval Enter and Space operate, each stop visibly focused", async ({ page, createUser, db }) => {
  const admin = await createUser("admin");
  const { approval, agent } = await holdRequest(db, { ownerId: admin.id, url: "https://backboard.railway.com/graphql/v2", body: JSON.stringify({ query: 'mutation { volumeDelete(volumeId: "vol_prod") }' }) });
  const approver = await createUser("approver");
  await signInViaApi(page.request, approver.email, approver.password);

  await visit(page, "/approvals");
  await tabTo(page, (f) => f.inNav && f.text.startsWith("Approvals"), "the Approvals link of the main navigation");
  // On to the held request's Review link (its row names the agent), opened with Enter.
  const row = page.locator(`[data-approval-id="${approval.id}"]`);
  await expect(row).toContainText(agent.name);
  for (let i = 0; i < 200; i++) {
    await page.keyboard.press("Tab");
    if (await row.getByRole("link", { name: "Review" }).evaluate((el) => el === document.activeElement)) break;
    const f = await focused(page);
    if (f) expect(f.indicated, `the focus on ${f.tag} "${f.text}" is visible`).toBe(true);
  }
  await expect(row.getByRole("link", { name: "Review" })).toBeFocused();
  expect((await focused(page))?.indicated, "the Review link shows its focus").toBe(true);
  await page.keyboard.press("Enter");
  await expect(page).toHaveURL(new RegExp(`/approvals/${approval.id}$`));
  await expect(page.getByRole("button", { name: "Approve…" })).toBeVisible();

  // On the card: Tab to Approve…, Space opens the confirmation, Tab to its confirm, Enter decides.
  await tabTo(page, (f) => f.tag === "BUTTON" && f.text === "Approve…", "the Approve… button");
  await page.keyboard.press("Space");
  await expect(page.getByTestId("confirm-decision")).toBeFocused();
  await tabTo(page, (f) => f.tag === "BUTTON" && f.text === "Confirm approval", "Confirm approval");
  await page.keyboard.press("Enter");
  await expect.poll(async () => (await db.approval.findUniqueOrThrow({ where: { id: approval.id } })).status).toBe("approved");
  await expect(page.getByTestId("card-status")).toContainText("approved");
});
