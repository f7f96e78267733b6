import type { Db } from "../../lib/db/client";
import { unique } from "../support/factories";
import { expect, signInViaApi, test } from "./support/fixtures";

/** A held request as the proxy records it (the proxy itself is covered by tests/integration/proxy). */
async function pendingApproval(db: Db, ownerId: string) {
  const agent = await db.agent.create({ data: { name: unique("held"), ownerId } });
  const task = await db.task.create({ data: { agentId: agent.id, purpose: "held work", policyYaml: "rules: []\n", expiresAt: new Date(Date.now() + 600_000) } });
  return db.approval.create({
    data: {
      taskId: task.id,
      agentId: agent.id,
      requestDigest: "d".repeat(64),
      method: "POST",
      url: "https://backboard.railway.com/graphql/v2",
      actions: [],
      reason: "irreversible `volumeDelete` on staging volume vol_1: held for approval",
      expiresAt: new Date(Date.now() + 600_000),
    },
  });
}

test("the approve/deny route handlers: 401 signed out, 403 for auditors, once for approvers, CSRF-checked", async ({ api, createUser, db }) => {
  const owner = await createUser("admin");
  const approval = await pendingApproval(db, owner.id);
  expect((await api.post(`/api/v1/approvals/${approval.id}/approve`)).status()).toBe(401);

  const auditor = await createUser("auditor");
  await signInViaApi(api, auditor.email, auditor.password);
  expect((await api.post(`/api/v1/approvals/${approval.id}/approve`)).status()).toBe(403);
  const { csrfToken } = (await (await api.get("/api/auth/csrf")).json()) as { csrfToken: string };
  await api.post("/api/auth/signout", { form: { csrfToken } });

  const approver = await createUser("approver");
  await signInViaApi(api, approver.email, approver.password);
  expect((await api.post(`/api/v1/approvals/${approval.id}/approve`, { headers: { origin: "https://evil.example" } })).status()).toBe(403);
  const ok = await api.post(`/api/v1/approvals/${approval.id}/approve`, { data: { note: "checked with the owner" } });
  expect(ok.status()).toBe(200);
  expect(await ok.json()).toMatchObject({ approval: { status: "approved" } });
  const again = await api.post(`/api/v1/approvals/${approval.id}/deny`);
  expect(again.status()).toBe(409);
  expect((await db.approval.findUniqueOrThrow({ where: { id: approval.id } })).status).toBe("approved");
});

test("an approver opens a held request from the Approvals page and decides it on its card", async ({ page, createUser, db }) => {
  const owner = await createUser("admin");
  const approval = await pendingApproval(db, owner.id);
  const approver = await createUser("approver");
  await signInViaApi(page.request, approver.email, approver.password);
  await page.goto("/approvals");
  const row = page.locator(`[data-approval-id="${approval.id}"]`);
  await expect(row).toContainText("POST");
  await expect(row).toContainText("https://backboard.railway.com/graphql/v2");
  await row.getByRole("link", { name: "Review" }).click();
  await expect(page).toHaveURL(new RegExp(`/approvals/${approval.id}$`));
  await page.getByRole("button", { name: "Approve…" }).click();
  await page.getByTestId("confirm-decision").getByRole("button", { name: "Confirm approval" }).click();
  await expect.poll(async () => (await db.approval.findUniqueOrThrow({ where: { id: approval.id } })).status).toBe("approved");
});

test("ending the task cancels its held request: the API refuses to approve it and says why, the page shows it cancelled", async ({ api, page, createUser, db }) => {
  const owner = await createUser("admin");
  const approval = await pendingApproval(db, owner.id);
  const agent = await db.agent.findUniqueOrThrow({ where: { id: approval.agentId } });
  await signInViaApi(api, owner.email, owner.password);
  expect((await api.post(`/api/v1/tasks/${approval.taskId}/end`)).status()).toBe(200);
  expect((await db.approval.findUniqueOrThrow({ where: { id: approval.id } })).status).toBe("cancelled");

  const late = await api.post(`/api/v1/approvals/${approval.id}/approve`);
  expect(late.status()).toBe(409);
  const body = (await late.json()) as { message: string; details: unknown };
  expect(body.message).toMatch(/cancelled because the task was ended/);
  expect(body.details).toEqual({ status: "cancelled", reason: "task_ended" });
  expect((await db.approval.findUniqueOrThrow({ where: { id: approval.id } })).status).toBe("cancelled");

  const approver = await createUser("approver");
  await signInViaApi(page.request, approver.email, approver.password);
  await page.goto("/approvals");
  await expect(page.getByTestId("approval-row").filter({ hasText: agent.name })).toHaveCount(0);
  const row = page.getByTestId("cancelled-approval-row").filter({ hasText: agent.name });
  await expect(row).toContainText("Cancelled");
  await expect(row).toContainText("the task was ended");
  await expect(row.getByRole("button")).toHaveCount(0);
});

test("a request held between the page's render and the opening of its live stream appears without a reload", async ({ page, createUser, db }) => {
  const owner = await createUser("admin");
  const approver = await createUser("approver");
  await signInViaApi(page.request, approver.email, approver.password);
  // The live stream is held back until the page has rendered and the hold exists: the stream's
  // first event then differs from what the page shows, and only that can bring the row in.
  let release = () => {};
  const released = new Promise<void>((resolve) => (release = resolve));
  let streams = 0;
  await page.route("**/api/v1/approvals/events", async (route) => {
    streams++;
    await released;
    await route.continue();
  });
  await page.goto("/approvals");
  await expect.poll(() => streams).toBeGreaterThan(0);
  const approval = await pendingApproval(db, owner.id);
  release();
  await expect(page.locator(`[data-approval-id="${approval.id}"]`)).toBeVisible({ timeout: 15_000 });
  // And on its card, a decision made before the card's stream opened shows too.
  let releaseCard = () => {};
  const cardReleased = new Promise<void>((resolve) => (releaseCard = resolve));
  await page.unroute("**/api/v1/approvals/events");
  streams = 0;
  await page.route("**/api/v1/approvals/events", async (route) => {
    streams++;
    await cardReleased;
    await route.continue();
  });
  await page.goto(`/approvals/${approval.id}`);
  await expect(page.getByRole("button", { name: "Approve…" })).toBeVisible();
  await expect.poll(() => streams).toBeGreaterThan(0);
  await db.approval.update({ where: { id: approval.id }, data: { status: "denied", decidedAt: new Date(), decidedById: owner.id } });
  releaseCard();
  await expect(page.getByRole("button", { name: "Approve…" })).toHaveCount(0, { timeout: 15_000 });
});

test("the decision's confirmation by keyboard: it takes the focus, Escape closes it, the focus returns to the button that opened it", async ({ page, createUser, db }) => {
  const owner = await createUser("admin");
  const approval = await pendingApproval(db, owner.id);
  const approver = await createUser("approver");
  await signInViaApi(page.request, approver.email, approver.password);
  await page.goto(`/approvals/${approval.id}`);
  for (const [opener, confirm] of [["Deny…", "Confirm denial"], ["Approve…", "Confirm approval"]] as const) {
    await page.getByRole("button", { name: opener }).focus();
    await page.keyboard.press("Enter");
    const group = page.getByTestId("confirm-decision");
    await expect(group).toBeFocused();
    await page.keyboard.press("Tab");
    await expect(group.getByRole("button", { name: confirm })).toBeFocused();
    await page.keyboard.press("Escape");
    await expect(group).toHaveCount(0);
    await expect(page.getByRole("button", { name: opener })).toBeFocused();
  }
  expect((await db.approval.findUniqueOrThrow({ where: { id: approval.id } })).status).toBe("pending");
});
