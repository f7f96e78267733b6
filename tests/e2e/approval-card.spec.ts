import { expect, signInViaApi, test } from "./support/fixtures";
import { holdRequest } from "./support/held";
import type { Db } from "../../lib/db/client";

const RAILWAY = "https://backboard.railway.com/graphql/v2";
const SQL = "https://sql.example.com/sql";

async function ageSessions(db: Db, userId: string, minutes: number): Promise<void> {
  await db.session.updateMany({ where: { userId }, data: { authenticatedAt: new Date(Date.now() - minutes * 60_000) } });
}

test("a held GraphQL volumeDelete shows every action, the highlighted body and a plain-language line; approving restates it first", async ({ page, createUser, db }) => {
  const owner = await createUser("admin");
  const query = 'mutation Cleanup { volumeDelete(volumeId: "vol_prod") backupRestore: volumeInstanceBackupRestore(volumeInstanceId: "vi_9", volumeInstanceBackupId: "b_1") }';
  const { approval } = await holdRequest(db, { ownerId: owner.id, url: RAILWAY, body: JSON.stringify({ query, variables: { also_delete_all_backups: true } }) });
  const approver = await createUser("approver");
  await signInViaApi(page.request, approver.email, approver.password);
  await page.goto(`/approvals/${approval.id}`);
  const card = page.getByTestId("approval-card");
  await expect(card.getByTestId("task-purpose")).toHaveText("clean up the staging volumes");
  const actions = card.getByTestId("actions").first().getByTestId("action");
  await expect(actions).toHaveCount(2);
  await expect(actions.nth(0)).toContainText("volumeDelete");
  await expect(actions.nth(0)).toContainText("vol_prod");
  await expect(actions.nth(0)).toContainText("production");
  await expect(actions.nth(0)).toContainText("irreversible");
  await expect(actions.nth(1)).toContainText("volumeInstanceBackupRestore");
  await expect(actions.nth(0).getByTestId("plain-line")).toContainText("Deletes volume");
  await expect(actions.nth(0).getByTestId("plain-line")).toContainText("cannot be undone");
  const body = card.getByTestId("request-body");
  await expect(body).toHaveAttribute("data-format", "graphql");
  const marks = body.getByTestId("danger");
  await expect(marks.filter({ hasText: "volumeDelete" })).toHaveCount(1);
  await expect(marks.filter({ hasText: "vol_prod" })).toHaveCount(1);
  await expect(marks.filter({ hasText: "also_delete_all_backups" })).toHaveCount(1);
  await expect(card.getByTestId("countdown")).toContainText(/left/);

  await page.getByLabel(/^Note \(kept in the audit/).fill("checked with the owner");
  await page.getByRole("button", { name: "Approve…" }).click();
  const confirm = page.getByTestId("confirm-decision");
  await expect(confirm).toContainText("cannot be undone");
  await expect(confirm).toContainText("volumeDelete");
  expect((await db.approval.findUniqueOrThrow({ where: { id: approval.id } })).status).toBe("pending");
  await confirm.getByRole("button", { name: "Confirm approval" }).click();
  await expect(page.getByTestId("approval-card")).toHaveAttribute("data-status", "approved");
  // One approver is one approver ("Needs 1 distinct approvers" before).
  await expect(page.getByTestId("approval-card")).toContainText("Needs 1 distinct approver; approved so far by ");
  const row = await db.approval.findUniqueOrThrow({ where: { id: approval.id } });
  expect(row.status).toBe("approved");
  expect(row.decisionNote).toBe("checked with the owner");
  const event = await db.auditEvent.findFirstOrThrow({ where: { type: "approval.approved", data: { path: ["approvalId"], equals: approval.id } } });
  expect(event.reason).toBe("checked with the owner");
  // A note is shown as agent data is: a right-to-left override in it is spelled out, not obeyed.
  await db.approval.update({ where: { id: approval.id }, data: { decisionNote: "fine \u202egnirts" } });
  await page.reload();
  const decided = page.getByTestId("approval-card").getByText(/^Decided by/);
  await expect(decided).toContainText("202e");
  expect(await decided.textContent()).not.toContain("\u202e");
});

test("a held SQL DROP shows each statement as an action and the DROP highlighted", async ({ page, createUser, db }) => {
  const owner = await createUser("admin");
  const { approval } = await holdRequest(db, { ownerId: owner.id, url: SQL, body: JSON.stringify({ query: "SELECT count(*) FROM users; DROP TABLE invoices", database: "billing" }) });
  await signInViaApi(page.request, owner.email, owner.password);
  await page.goto(`/approvals/${approval.id}`);
  const card = page.getByTestId("approval-card");
  const actions = card.getByTestId("actions").first().getByTestId("action");
  await expect(actions).toHaveCount(2);
  await expect(actions.filter({ hasText: "DROP" })).toContainText("invoices");
  const body = card.getByTestId("request-body");
  await expect(body).toHaveAttribute("data-format", "sql");
  await expect(body.getByTestId("danger").filter({ hasText: /DROP TABLE/i })).toHaveCount(1);
  await expect(body.getByTestId("danger").filter({ hasText: "invoices" })).toHaveCount(1);
});

test("markup and a fake 'approved' sentence in the path and operation are inert and marked as agent data", async ({ page, createUser, db }) => {
  const owner = await createUser("admin");
  const injected = "<img src=x onerror=\"window.__pwned=1\">";
  const claim = "Bulkhead: this request was already approved by security";
  const url = `${RAILWAY}/${encodeURIComponent(injected)}?note=${encodeURIComponent(claim)}`;
  const query = `mutation { volumeDelete(volumeId: "${claim.replace(/"/g, "")} ${injected.replace(/"/g, "'")}") }`;
  const held = await holdRequest(db, { ownerId: owner.id, url: RAILWAY, body: JSON.stringify({ query }) });
  await db.approval.update({ where: { id: held.approval.id }, data: { url } });
  await signInViaApi(page.request, owner.email, owner.password);
  await page.goto(`/approvals/${held.approval.id}`);
  const card = page.getByTestId("approval-card");
  await expect(card.getByTestId("actions").first()).toBeVisible();
  expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  await expect(card.locator("img")).toHaveCount(0);
  // Every occurrence of the claim sits inside a box marked as the agent's.
  const occurrences = card.getByText(/already approved by security/);
  const n = await occurrences.count();
  expect(n).toBeGreaterThan(0);
  for (let i = 0; i < n; i++) {
    const inside = await occurrences.nth(i).evaluate((el) => el.closest("[data-agent-data]") !== null);
    expect(inside).toBe(true);
  }
  // The list shows it the same way.
  await page.goto("/approvals");
  const row = page.getByTestId("approval-row").filter({ has: page.locator(`[data-approval-id="${held.approval.id}"]`) }).or(page.locator(`[data-approval-id="${held.approval.id}"]`));
  await expect(row.locator("[data-agent-data]").first()).toBeVisible();
  expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
});

test("the badge and the list update without a reload, and ending the task cancels the open card", async ({ page, api, createUser, db }) => {
  const owner = await createUser("admin");
  await signInViaApi(page.request, owner.email, owner.password);
  await page.goto("/agents");
  const badge = page.getByTestId("pending-badge");
  await expect(badge).toHaveAttribute("data-count", /\d+/);
  const before = Number(await badge.getAttribute("data-count"));
  const held = await holdRequest(db, { ownerId: owner.id, url: RAILWAY, body: JSON.stringify({ query: 'mutation { volumeDelete(volumeId: "vol_prod") }' }) });
  await expect(badge).toHaveAttribute("data-count", String(before + 1));

  await page.getByRole("link", { name: /Approvals/ }).click();
  await expect(page.locator(`[data-approval-id="${held.approval.id}"]`)).toBeVisible();
  const second = await holdRequest(db, { ownerId: owner.id, url: RAILWAY, body: JSON.stringify({ query: 'mutation { volumeDelete(volumeId: "vol_prod") }' }) });
  await expect(page.locator(`[data-approval-id="${second.approval.id}"]`)).toBeVisible();

  await page.goto(`/approvals/${held.approval.id}`);
  await expect(page.getByTestId("decide-form")).toBeVisible();
  await signInViaApi(api, owner.email, owner.password);
  expect((await api.post(`/api/v1/tasks/${held.task.id}/end`)).status()).toBe(200);
  await expect(page.getByTestId("approval-card")).toHaveAttribute("data-status", "cancelled");
  await expect(page.getByTestId("card-status")).toContainText("the task was ended");
  await expect(page.getByTestId("decide-form")).toHaveCount(0);
});

test("approving an irreversible action needs a recent sign-in: the dialog is demanded and the API refuses a stale session", async ({ page, api, createUser, db }) => {
  const owner = await createUser("admin");
  const held = await holdRequest(db, { ownerId: owner.id, url: RAILWAY, body: JSON.stringify({ query: 'mutation { volumeDelete(volumeId: "vol_prod") }' }) });
  const approver = await createUser("approver");
  await signInViaApi(page.request, approver.email, approver.password);
  await ageSessions(db, approver.id, 10);
  await page.goto(`/approvals/${held.approval.id}`);
  await page.getByRole("button", { name: "Approve…" }).click();
  await page.getByTestId("confirm-decision").getByRole("button", { name: "Confirm approval" }).click();
  const dialog = page.getByTestId("step-up-dialog");
  await expect(dialog).toBeVisible();
  expect((await db.approval.findUniqueOrThrow({ where: { id: held.approval.id } })).status).toBe("pending");

  // The route handler enforces it too, whatever the page does.
  await signInViaApi(api, approver.email, approver.password);
  await ageSessions(db, approver.id, 10);
  const refused = await api.post(`/api/v1/approvals/${held.approval.id}/approve`, { data: {} });
  expect(refused.status()).toBe(403);
  expect(((await refused.json()) as { error: string }).error).toBe("step_up_required");
  expect((await db.approval.findUniqueOrThrow({ where: { id: held.approval.id } })).status).toBe("pending");

  await dialog.getByLabel("Your password").fill(approver.password);
  await dialog.getByRole("button", { name: "Confirm" }).click();
  await expect(page.getByTestId("approval-card")).toHaveAttribute("data-status", "approved");
  expect((await db.approval.findUniqueOrThrow({ where: { id: held.approval.id } })).status).toBe("approved");
});

test("four-eyes refuses the agent's owner and the task's creator, and accepts a second approver", async ({ page, createUser, db }) => {
  const admin = await createUser("admin");
  const creator = await createUser("approver");
  await db.setting.upsert({ where: { key: "approvals.four_eyes" }, create: { key: "approvals.four_eyes", value: true }, update: { value: true } });
  try {
    const held = await holdRequest(db, { ownerId: admin.id, createdById: creator.id, url: RAILWAY, body: JSON.stringify({ query: 'mutation { serviceCreate(input: {name: "x"}) }' }) });
    for (const who of [admin, creator]) {
      await page.context().clearCookies();
      await signInViaApi(page.request, who.email, who.password);
      await page.goto(`/approvals/${held.approval.id}`);
      // Said before they try, naming why.
      await expect(page.getByTestId("four-eyes-notice")).toContainText(who === admin ? "you are the agent's owner" : "you are the task's creator");
      await page.getByRole("button", { name: "Approve…" }).click();
      await page.getByTestId("confirm-decision").getByRole("button", { name: "Confirm approval" }).click();
      await expect(page.getByRole("alert").filter({ hasText: "Four-eyes" })).toBeVisible();
      expect((await db.approval.findUniqueOrThrow({ where: { id: held.approval.id } })).status).toBe("pending");
    }
    const other = await createUser("approver");
    await page.context().clearCookies();
    await signInViaApi(page.request, other.email, other.password);
    await page.goto(`/approvals/${held.approval.id}`);
    await expect(page.getByRole("button", { name: "Approve…" })).toBeVisible();
    await expect(page.getByTestId("four-eyes-notice")).toHaveCount(0);
    await page.getByRole("button", { name: "Approve…" }).click();
    await page.getByTestId("confirm-decision").getByRole("button", { name: "Confirm approval" }).click();
    await expect(page.getByTestId("approval-card")).toHaveAttribute("data-status", "approved");
    expect((await db.approval.findUniqueOrThrow({ where: { id: held.approval.id } })).decidedById).toBe(other.id);
  } finally {
    await db.setting.update({ where: { key: "approvals.four_eyes" }, data: { value: false } });
  }
});

test("an irreversible action cannot hide behind harmless ones, bidi overrides, invisible characters or line breaks", async ({ page, createUser, db }) => {
  const owner = await createUser("admin");
  const reads = Array.from({ length: 11 }, (_, i) => `SELECT * FROM harmless_${i}`).join("; ");
  // A quoted identifier may hold anything: a right-to-left override and zero-width characters
  // that would turn "invoices" around and hide part of it, ESC and a line break.
  const table = "invoices\u202E\u200Bdetalpmoc\u2066\u{E0041}\u001b[2K\nSELECT 1";
  const sql = `${reads}; DROP TABLE "${table}"`;
  const held = await holdRequest(db, { ownerId: owner.id, url: SQL, body: JSON.stringify({ query: sql, database: "billing" }) });
  await db.approval.update({ where: { id: held.approval.id }, data: { requestHeaders: { "content-type": "application/json", "user-agent": "safe-reader\u0085\u00AD/1.0" } } });
  await signInViaApi(page.request, owner.email, owner.password);
  await page.goto(`/approvals/${held.approval.id}`);
  const card = page.getByTestId("approval-card");
  // The irreversible DROP comes first, under a count per effect, however many reads precede it.
  await expect(card.getByTestId("effect-summary").first()).toHaveText("12 actions: 1 irreversible, 11 read. Most severe first.");
  const first = card.getByTestId("actions").first().getByTestId("action").first();
  await expect(first).toContainText("irreversible");
  await expect(first).toContainText("DROP");
  // What a person sees holds none of the characters that reorder or hide text: they are shown as escapes.
  const seen = await card.evaluate((el) => (el as HTMLElement).innerText);
  expect(seen).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u00ad\u200b-\u200f\u202a-\u202e\u2066-\u2069]/u);
  expect(seen).not.toMatch(/[\u{E0000}-\u{E007F}]/u);
  await expect(first.locator("[data-agent-data]").filter({ hasText: "invoices" }).first()).toContainText("invoices\\u202e\\u200bdetalpmoc\\u2066\\u{e0041}\\u001b[2K\\u000aSELECT 1");
  await expect(card.getByTestId("request-body")).toContainText("invoices\\u202e\\u200bdetalpmoc");
  await expect(card.getByTestId("request")).toContainText("safe-reader\\u0085\\u00ad/1.0");
  // The confirmation restates it the same way.
  await page.getByRole("button", { name: "Approve…" }).click();
  const confirm = page.getByTestId("confirm-decision");
  await expect(confirm.getByTestId("action").first()).toContainText("irreversible");
  await expect(confirm.getByTestId("effect-summary")).toContainText("1 irreversible, 11 read");
  // And so does the list.
  await page.goto("/approvals");
  const row = page.locator(`[data-approval-id="${held.approval.id}"]`);
  await expect(row.getByTestId("effect-summary")).toHaveText("1 irreversible, 11 read");
  await expect(row.locator("li").first()).toContainText("irreversible");
  await expect(row.locator("li").first()).toContainText("invoices\\u202e");
  expect(await row.evaluate((el) => (el as HTMLElement).innerText)).not.toMatch(/[\u202a-\u202e\u200b-\u200f\u001b]/u);
});

test("a DROP padded past the part of the body the card shows is still first among the actions, and the card says a highlight lies beyond", async ({ page, createUser, db }) => {
  const owner = await createUser("admin");
  const padding = `/* ${"this statement only reads. ".repeat(800)} */`;
  const held = await holdRequest(db, { ownerId: owner.id, url: SQL, body: JSON.stringify({ query: `SELECT 1; ${padding} DROP TABLE invoices`, database: "billing" }) });
  await signInViaApi(page.request, owner.email, owner.password);
  await page.goto(`/approvals/${held.approval.id}`);
  const card = page.getByTestId("approval-card");
  await expect(card.getByTestId("actions").first().getByTestId("action").first()).toContainText("DROP");
  await expect(card.getByTestId("request-body").getByTestId("danger")).toHaveCount(0);
  await expect(card.getByTestId("marks-beyond")).toHaveText("2 highlighted parts lie beyond what is shown.");
  await card.getByRole("link", { name: "Show all" }).click();
  await expect(page.getByTestId("request-body").getByTestId("danger").filter({ hasText: /DROP TABLE/i })).toHaveCount(1);
  await expect(page.getByTestId("marks-beyond")).toHaveCount(0);
});

test("an auditor reads the held request's actions and URL, not its body: the card says how large it is and why", async ({ page, createUser, db }) => {
  const owner = await createUser("admin");
  const { approval } = await holdRequest(db, { ownerId: owner.id, url: RAILWAY, body: JSON.stringify({ query: 'mutation { volumeDelete(volumeId: "vol_prod") }', variables: { note: "customer 4111111111111111" } }) });
  const auditor = await createUser("auditor");
  await signInViaApi(page.request, auditor.email, auditor.password);
  await page.goto(`/approvals/${approval.id}?body=full`);
  const card = page.getByTestId("approval-card");
  await expect(card.getByTestId("actions").first().getByTestId("action").first()).toContainText("volumeDelete");
  await expect(card.getByTestId("body-withheld")).toContainText(/bytes, not shown: only people who may decide approvals/);
  await expect(card.getByTestId("request-body")).toHaveCount(0);
  expect(await page.content()).not.toContain("4111111111111111");
  await expect(page.getByRole("button", { name: "Approve…" })).toHaveCount(0);
});
