import pg from "pg";
import { createHash } from "node:crypto";
import { insertEvents } from "../support/audit-events";
import { unique } from "../support/factories";
import { expect, signInViaApi, test } from "./support/fixtures";

/**
 * A security team's per-task report: opened from the task's page, every section present, the
 * agent's markup shown as text, and the signed PDF downloaded with its detached signature.
 */
test("an auditor opens a task's report from the task page and downloads the signed PDF", async ({ page, createUser, db }) => {
  const owner = await createUser("admin");
  const agent = await db.agent.create({ data: { name: unique("report-e2e-agent"), ownerId: owner.id } });
  const task = await db.task.create({ data: { agentId: agent.id, purpose: "clean up staging volumes", policyYaml: "rules: []\n", expiresAt: new Date(Date.now() + 3600_000), createdById: owner.id } });
  const attack = `<img src=x onerror="window.__pwned=1">`;
  const pool = new pg.Pool({ connectionString: process.env.E2E_DATABASE_URL!, max: 1 });
  try {
    const base = { actorType: "agent", actorId: agent.id, agentId: agent.id, taskId: task.id, type: "proxy.decision" };
    await insertEvents(pool, [
      { ...base, outcome: "deny", effect: "irreversible", reason: `no rule allows volumeDelete ${attack}`, data: { method: "POST", url: `https://backboard.railway.com/graphql/v2?${attack}` } },
      { ...base, outcome: "allow", effect: "read", reason: "rule allows project", data: { method: "POST", url: "https://backboard.railway.com/graphql/v2" } },
      { ...base, outcome: "allow", effect: "read", reason: "rule allows project", data: { method: "POST", url: "https://backboard.railway.com/graphql/v2" } },
    ]);
  } finally {
    await pool.end();
  }

  const auditor = await createUser("auditor");
  await signInViaApi(page.request, auditor.email, auditor.password);
  await page.goto(`/tasks/${task.id}`);
  await page.getByTestId("task-report-link").click();
  await expect(page).toHaveURL(new RegExp(`/tasks/${task.id}/report`));
  await expect(page.getByTestId("report-summary")).toContainText(agent.name);
  await expect(page.getByTestId("report-summary")).toContainText(owner.email);
  await expect(page.getByTestId("report-outcomes")).toContainText("allow: 2");
  await expect(page.getByTestId("report-outcomes")).toContainText("deny: 1");
  await expect(page.getByTestId("report-timeline")).toBeVisible();
  await expect(page.getByTestId("report-verification-result")).toContainText("OK from seq");
  await expect(page.getByText(`no rule allows volumeDelete ${attack}`)).toBeVisible();
  expect(await page.evaluate(() => (window as { __pwned?: number }).__pwned)).toBeUndefined();

  await page.getByTestId("report-pdf-link").click();
  const [pdfDownload] = await Promise.all([page.waitForEvent("download"), page.getByTestId("report-download-pdf").click()]);
  const [sigDownload] = await Promise.all([page.waitForEvent("download"), page.getByTestId("report-download-sig").click()]);
  const pdf = await readAll(await pdfDownload.createReadStream());
  const signature = JSON.parse((await readAll(await sigDownload.createReadStream())).toString("utf8")) as { sha256: string; taskId: string; keyId: string };
  expect(pdf.subarray(0, 5).toString()).toBe("%PDF-");
  expect(signature).toMatchObject({ taskId: task.id, sha256: createHash("sha256").update(pdf).digest("hex") });
  // Its public key is published at the well-known address.
  const keys = (await (await page.request.get("/.well-known/bulkhead-audit-keys.json")).json()) as { keys: Array<{ keyId: string; use: string }> };
  expect(keys.keys).toContainEqual(expect.objectContaining({ keyId: signature.keyId, use: "report" }));
  // Generating and viewing were recorded.
  expect(await db.auditEvent.count({ where: { type: "audit.report_generated", taskId: task.id } })).toBeGreaterThanOrEqual(2);
});

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

test("a report's empty decision log says why: no request yet, or an outcome the task never had", async ({ page, createUser, db }) => {
  const owner = await createUser("admin");
  const agent = await db.agent.create({ data: { name: unique("report-empty-agent"), ownerId: owner.id } });
  const task = await db.task.create({ data: { agentId: agent.id, purpose: "nothing done yet", policyYaml: "rules: []\n", expiresAt: new Date(Date.now() + 3600_000), createdById: owner.id } });
  await signInViaApi(page.request, owner.email, owner.password);
  await page.goto(`/tasks/${task.id}/report`);
  await expect(page.getByTestId("report-decisions-empty")).toHaveText(/^The agent has made no request under this task yet/);

  const pool = new pg.Pool({ connectionString: process.env.E2E_DATABASE_URL!, max: 1 });
  try {
    await insertEvents(pool, [{ actorType: "agent", actorId: agent.id, agentId: agent.id, taskId: task.id, type: "proxy.decision", outcome: "deny", effect: "write", reason: "no rule", data: { method: "POST", url: "https://api.github.com/repos/a/b/issues" } }]);
  } finally {
    await pool.end();
  }
  // "denied" for "deny": the empty table names the outcomes the task does have.
  await page.goto(`/tasks/${task.id}/report?outcome=denied`);
  await expect(page.getByTestId("report-decisions-empty")).toContainText("No decision of this task has the outcome “denied”; its outcomes are deny.");
  await page.getByRole("link", { name: "Show all decisions" }).click();
  await expect(page.getByTestId("report-decisions-empty")).toHaveCount(0);
  await expect(page.getByTestId("report-page-beyond")).toHaveCount(0);
  // A page past the end says so, above the last page it shows instead.
  await page.goto(`/tasks/${task.id}/report?page=999`);
  await expect(page.getByTestId("report-page-beyond")).toHaveText("There is no page 999: the decision log has 1 page, and this is the last.");
  await expect(page.getByText("page 1 of 1")).toBeVisible();
});
