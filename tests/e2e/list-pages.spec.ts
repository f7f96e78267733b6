import { retiredSigningKeyData, unique } from "../support/factories";
import { expect, signInViaApi, test } from "./support/fixtures";

/** The Tasks and Agents pages show 100 rows a page and link on to the rest: no row is out of reach. */
test("the task list pages on past its first 100 tasks, keeping the agent filter", async ({ page, createUser, db }) => {
  const admin = await createUser("admin");
  const agent = await db.agent.create({ data: { name: unique("pager"), ownerId: admin.id } });
  const base = Date.parse("2026-10-01T00:00:00Z");
  await db.task.createMany({
    data: Array.from({ length: 103 }, (_, i) => ({ agentId: agent.id, purpose: `paged task ${String(i).padStart(3, "0")}`, policyYaml: "rules: []\n", expiresAt: new Date(base + 3600_000), createdAt: new Date(base + i * 1000) })),
  });
  await signInViaApi(page.request, admin.email, admin.password);

  await page.goto(`/tasks?agent=${agent.id}`);
  const rows = page.locator("tbody tr");
  await expect(rows).toHaveCount(100);
  await expect(rows.first()).toContainText("paged task 102");
  await expect(page.getByRole("link", { name: "First page" })).toHaveCount(0);
  await page.getByRole("link", { name: "Older tasks →" }).click();
  await expect(rows).toHaveCount(3);
  await expect(rows.nth(0)).toContainText("paged task 002");
  await expect(rows.nth(2)).toContainText("paged task 000");
  await expect(page.getByText("Oldest task reached.")).toBeVisible();
  expect(new URL(page.url()).searchParams.get("agent")).toBe(agent.id);
  await page.getByRole("link", { name: "First page" }).click();
  await expect(rows).toHaveCount(100);
  await expect(rows.first()).toContainText("paged task 102");

  // The status filter reads tasks as they are shown (these expired an hour after 2026-10-01), keeps
  // the agent, and pages the same way.
  await page.getByLabel("Status").selectOption("active");
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page.getByText("No active tasks")).toBeVisible();
  expect(new URL(page.url()).searchParams.get("agent")).toBe(agent.id);
  await page.getByLabel("Status").selectOption("expired");
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(rows).toHaveCount(100);
  await page.getByRole("link", { name: "Older tasks →" }).click();
  await expect(rows).toHaveCount(3);
  expect(new URL(page.url()).searchParams.get("status")).toBe("expired");

  // A position that is not one is said on the page, not a server error and not the first page.
  const res = await page.goto(`/tasks?agent=${agent.id}&cursor=bogus`);
  expect(res?.status()).toBe(200);
  await expect(page.getByText("cursor is not a position in the tasks list", { exact: false })).toBeVisible();
  await expect(rows).toHaveCount(0);
});

test("the agent list pages on by name, keeping the search", async ({ page, createUser, db }) => {
  const admin = await createUser("admin");
  const prefix = unique("fleet");
  await db.agent.createMany({ data: Array.from({ length: 104 }, (_, i) => ({ name: `${prefix}-${String(i).padStart(3, "0")}`, ownerId: admin.id })) });
  await signInViaApi(page.request, admin.email, admin.password);

  await page.goto(`/agents?q=${prefix}`);
  const rows = page.locator("tbody tr");
  await expect(rows).toHaveCount(100);
  await expect(rows.last()).toContainText(`${prefix}-099`);
  await page.getByRole("link", { name: "Next agents →" }).click();
  await expect(rows).toHaveCount(4);
  await expect(rows.first()).toContainText(`${prefix}-100`);
  await expect(page.getByText("Last agent reached.")).toBeVisible();
  expect(new URL(page.url()).searchParams.get("q")).toBe(prefix);
});

/** Rows of a paged table (its first column), every page followed, and how many pages it took. */
async function everyPageOf(page: import("@playwright/test").Page, next: string, first: (row: import("@playwright/test").Locator) => Promise<string>) {
  const seen: string[] = [];
  let pages = 0;
  for (;;) {
    pages++;
    const rows = page.locator("tbody tr");
    const count = await rows.count();
    expect(count).toBeLessThanOrEqual(100);
    for (let i = 0; i < count; i++) seen.push(await first(rows.nth(i)));
    const link = page.getByRole("link", { name: `${next} →` });
    if ((await link.count()) === 0) return { seen, pages };
    await link.click();
    await page.waitForURL(/cursor=/);
  }
}

test("credentials and API keys page on past 100 rows; every row is reachable once", async ({ page, createUser, db }) => {
  const admin = await createUser("admin");
  const prefix = unique("vault");
  const names = Array.from({ length: 103 }, (_, i) => `${prefix}-${String(i).padStart(3, "0")}`);
  await db.credential.createMany({ data: names.map((name, i) => ({ name, scheme: "https", host: `${name}.example.test`, port: 443 + i, headerTemplate: "Authorization: Bearer {secret}", secretSealed: "sealed" })) });
  await db.apiKey.createMany({ data: names.map((name, i) => ({ name, prefix: `${prefix}${i}`, keyHash: `${prefix}-hash-${i}`, role: "auditor" as const })) });
  try {
    await signInViaApi(page.request, admin.email, admin.password);
    await page.goto("/services");
    const credentials = await everyPageOf(page, "Next credentials", async (row) => (await row.locator("td").first().innerText()).trim());
    expect(credentials.pages).toBeGreaterThanOrEqual(2);
    await expect(page.getByText("Last credential reached.")).toBeVisible();
    expect(new Set(credentials.seen).size).toBe(credentials.seen.length);
    expect(credentials.seen.filter((n) => n.startsWith(prefix))).toEqual(names);

    await page.goto("/settings/api-keys");
    const keys = await everyPageOf(page, "Older keys", async (row) => (await row.locator("td").first().innerText()).split("\n")[0]!.trim());
    expect(keys.pages).toBeGreaterThanOrEqual(2);
    await expect(page.getByText("Oldest key reached.")).toBeVisible();
    expect(new Set(keys.seen.filter((n) => n.startsWith(prefix)))).toEqual(new Set(names));

    const res = await page.goto("/services?cursor=bogus");
    expect(res?.status()).toBe(200);
    await expect(page.getByText("cursor is not a position in the credentials list", { exact: false })).toBeVisible();
  } finally {
    // Later files expect their own credentials on the first page of /services.
    await db.credential.deleteMany({ where: { name: { in: names } } });
    await db.apiKey.deleteMany({ where: { name: { in: names } } });
  }
});

test("a person with more live sessions than are listed is told how many there are", async ({ page, createUser, db }) => {
  const person = await createUser("auditor");
  const now = Date.now();
  await db.session.createMany({
    data: Array.from({ length: 210 }, (_, i) => ({ tokenHash: `${person.id}-${i}`, userId: person.id, expiresAt: new Date(now + 3600_000), lastSeenAt: new Date(now - (i + 60) * 1000) })),
  });
  await signInViaApi(page.request, person.email, person.password);
  await page.goto("/account");
  await expect(page.locator("tbody tr")).toHaveCount(200);
  await expect(page.getByTestId("sessions-not-listed")).toHaveText("Listed: the 200 most recently used of your 211 live sessions. Sign out everywhere else ends all 210 others.");
  await expect(page.getByRole("button", { name: "Sign out everywhere else" })).toBeVisible();
});

test("a task's tokens page on past the first 100, and a bad position is said on the page", async ({ page, createUser, db }) => {
  const admin = await createUser("admin");
  const agent = await db.agent.create({ data: { name: unique("minted"), ownerId: admin.id } });
  const task = await db.task.create({ data: { agentId: agent.id, purpose: "many tokens", policyYaml: "rules: []\n", expiresAt: new Date(Date.now() + 3600_000) } });
  // A retired key: the shared dashboard must go on signing with its own, and the worker importing it.
  const { kid } = await db.signingKey.create({ data: await retiredSigningKeyData() });
  const base = Date.now() - 60_000;
  const jtis = Array.from({ length: 104 }, (_, i) => `tok_${String(i).padStart(3, "0")}_${unique("j")}`.replace(/[^A-Za-z0-9_-]/g, "_"));
  await db.issuedToken.createMany({ data: jtis.map((jti, i) => ({ jti, taskId: task.id, agentId: agent.id, kid, issuedAt: new Date(base + i * 10), expiresAt: new Date(base + 3600_000) })) });
  await signInViaApi(page.request, admin.email, admin.password);

  await page.goto(`/tasks/${task.id}`);
  const tokens = page.locator("tbody tr", { hasText: "tok_" });
  await expect(tokens).toHaveCount(100);
  await expect(tokens.first()).toContainText("tok_103_");
  await page.getByRole("link", { name: "Older tokens →" }).click();
  await expect(tokens).toHaveCount(4);
  await expect(tokens.last()).toContainText("tok_000_");
  await expect(page.getByText("Oldest token reached.")).toBeVisible();

  const res = await page.goto(`/tasks/${task.id}?tokens=bogus`);
  expect(res?.status()).toBe(200);
  await expect(page.getByText("cursor is not a position in the tokens list", { exact: false })).toBeVisible();
  await expect(tokens).toHaveCount(0);
});

test("a wide table scrolls inside its frame: the page itself never scrolls sideways at 1280 px", async ({ page, createUser, db }) => {
  const admin = await createUser("admin");
  // A credential whose name and host are long, as real ones are (a wide Services & Credentials table).
  await db.credential.create({
    data: { name: unique("a-credential-with-a-rather-long-descriptive-name-for-production"), scheme: "https", host: `${unique("api-gateway-production-eu-west-1-internal")}.example.test`, port: 8443, headerTemplate: "X-Very-Long-Authorization-Header-Name: Bearer {secret}", secretSealed: "v1.not-a-real-envelope", createdById: admin.id },
  });
  await signInViaApi(page.request, admin.email, admin.password);
  await page.setViewportSize({ width: 1280, height: 800 });
  for (const path of ["/services", "/audit", "/tasks", "/agents", "/approvals"]) {
    await page.goto(path);
    await expect(page.locator("main")).toBeVisible();
    const { scrollWidth, innerWidth } = await page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth }));
    expect(scrollWidth, path).toBeLessThanOrEqual(innerWidth);
  }
});

/** The Approvals page shows 200 waiting actions a page, oldest first, says how many wait, and links on: none is out of an approver's reach. */
test("the approvals page pages on past 200 waiting actions and says how many wait", async ({ page, createUser, db }) => {
  const admin = await createUser("admin");
  const agent = await db.agent.create({ data: { name: unique("queue"), ownerId: admin.id } });
  const task = await db.task.create({ data: { agentId: agent.id, purpose: unique("queued task"), policyYaml: "rules: []\n", expiresAt: new Date(Date.now() + 3600_000) } });
  const base = Date.parse("2026-01-01T00:00:00Z");
  await db.approval.createMany({
    data: Array.from({ length: 203 }, (_, i) => ({
      taskId: task.id,
      agentId: agent.id,
      requestDigest: `queue-${i}`,
      method: "DELETE",
      url: `https://api.example.test/queued/${String(i).padStart(3, "0")}`,
      actions: [],
      reason: "held",
      createdAt: new Date(base + i * 1000),
      expiresAt: new Date(Date.now() + 3600_000),
    })),
  });
  await signInViaApi(page.request, admin.email, admin.password);
  try {
    await page.goto("/approvals");
    const rows = page.locator('[data-testid="approval-row"]');
    await expect(rows).toHaveCount(200);
    // Oldest first: these were made in 2026-01, before any other test's holds.
    await expect(rows.first()).toContainText("queued/000");
    await expect(page.getByTestId("pending-count")).toContainText(/\d+ actions are waiting; this page shows 200 of them, oldest first\./);
    const seen = new Set<string>();
    const collect = async () => {
      for (const text of await rows.allInnerTexts()) for (const m of text.matchAll(/queued\/(\d{3})/g)) seen.add(m[1]!);
    };
    await collect();
    while (await page.getByRole("link", { name: "Next waiting actions →" }).count()) {
      await page.getByRole("link", { name: "Next waiting actions →" }).click();
      await expect(page.getByRole("link", { name: "First page" })).toBeVisible();
      await collect();
    }
    await expect(page.getByText("No more actions are waiting.")).toBeVisible();
    expect(seen.size).toBe(203);
  } finally {
    // Settled rather than deleted: a webhook another test added has deliveries of them queued.
    await db.approval.updateMany({ where: { taskId: task.id, status: "pending" }, data: { status: "cancelled", cancelledAt: new Date(), cancelReason: "task_ended" } });
    await db.task.update({ where: { id: task.id }, data: { status: "ended", endedAt: new Date(), endedReason: "test over" } });
  }
});
