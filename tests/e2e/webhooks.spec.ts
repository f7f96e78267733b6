import http from "node:http";
import type { AddressInfo } from "node:net";
import { verifySignature } from "../../lib/webhooks/sign";
import { unique } from "../support/factories";
import { expect, signInViaApi, test } from "./support/fixtures";

test("an admin cannot point a webhook at this machine, a private network or the metadata service; a public receiver is added", async ({ page, createUser, db, baseURL }) => {
  const admin = await createUser("admin");
  await signInViaApi(page.request, admin.email, admin.password);
  await page.goto("/settings/webhooks");
  const url = page.getByLabel("URL");
  // This suite's dashboard allows 127.0.0.2 (tests/e2e/support/global-setup.ts); nothing else that is not public.
  await expect(page.getByText("Receivers on public addresses, or in 127.0.0.2/32 (allowed by the operator with BULKHEAD_WEBHOOK_ALLOWED_NETWORKS).")).toBeVisible();

  const name = unique("sec-team");
  await page.getByLabel("Name").fill(name);
  for (const [target, why] of [
    ["http://169.254.169.254/latest/meta-data/iam/security-credentials/", /169\.254\.169\.254 is link-local/],
    [`${baseURL}/api/v1/users`, /127\.0\.0\.1 is loopback/],
    ["http://[::ffff:10.0.0.1]/hook", /10\.0\.0\.1/],
    ["http://127.0.0.3:8080/hook", /127\.0\.0\.3 is loopback.*The networks allowed besides public addresses are 127\.0\.0\.2\/32/],
  ] as const) {
    await url.fill(target);
    await page.getByRole("button", { name: "Add webhook" }).click();
    const error = page.locator("#url-error");
    await expect(error).toContainText("Webhooks are sent to public addresses only (");
    await expect(error).toContainText(why);
    // What was typed stays, to be corrected.
    await expect(url).toHaveValue(target);
    await expect(page.getByLabel("Name")).toHaveValue(name);
  }
  expect(await db.webhook.count({ where: { name } })).toBe(0);

  // The API refuses the same way, with the field named.
  const api = await page.request.post("/api/v1/webhooks", { headers: { origin: new URL(baseURL!).origin }, data: { name, url: "http://localhost:3000/hook" } });
  expect(api.status()).toBe(400);
  const body = (await api.json()) as { error: string; message: string; details: { fieldErrors: { url: string[] } } };
  expect(body.error).toBe("invalid_input");
  // With networks allowed, a local name is looked up, and every answer must be inside them.
  expect(body.message).toMatch(/^Webhooks are sent to public addresses only \("localhost" resolved to a forbidden address \(127\.0\.0\.1 is loopback\)/);
  expect(body.details.fieldErrors.url).toEqual([body.message]);

  await url.fill("https://hooks.example.com/services/T000/B000/e2e");
  await page.getByRole("button", { name: "Add webhook" }).click();
  await expect(page.getByTestId("webhook-secret")).toContainText("whsec_");
  // Its own row (the browser tests share one database: other tests' webhooks may name the same host).
  await expect(page.getByRole("row").filter({ hasText: name }).getByRole("cell", { name: "hooks.example.com" })).toBeVisible();
  // No delivery may linger for later tests' approvals.
  await db.webhook.deleteMany({ where: { name } });
});

test("a hold reaches a receiver on a network the operator allows, signed, and the deliveries list says so", async ({ page, createUser, db }) => {
  const received: Array<{ signature: string; body: string }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      received.push({ signature: String(req.headers["bulkhead-signature"]), body: Buffer.concat(chunks).toString("utf8") });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.2", r));
  const name = unique("on-call");
  try {
    const admin = await createUser("admin");
    await signInViaApi(page.request, admin.email, admin.password);
    await page.goto("/settings/webhooks");
    await page.getByLabel("Name").fill(name);
    await page.getByLabel("URL").fill(`http://127.0.0.2:${(server.address() as AddressInfo).port}/hook`);
    await page.getByRole("button", { name: "Add webhook" }).click();
    const secret = (await page.getByTestId("webhook-secret").textContent())!.trim();
    expect(secret).toMatch(/^whsec_/);

    // A held request, as the proxy records it: the database queues its delivery, the dashboard sends it.
    const agent = await db.agent.create({ data: { name: unique("held"), ownerId: admin.id } });
    const task = await db.task.create({ data: { agentId: agent.id, purpose: "held work", policyYaml: "rules: []\n", expiresAt: new Date(Date.now() + 600_000) } });
    const approval = await db.approval.create({
      data: { taskId: task.id, agentId: agent.id, requestDigest: "e".repeat(64), method: "POST", url: "https://backboard.railway.com/graphql/v2", actions: [], reason: "held for approval", expiresAt: new Date(Date.now() + 600_000) },
    });
    await expect.poll(() => received.length, { timeout: 15_000 }).toBeGreaterThanOrEqual(1);
    const [first] = received;
    expect(JSON.parse(first!.body)).toMatchObject({ event: "hold", approvalId: approval.id });
    expect(verifySignature(secret, first!.signature, first!.body, Math.floor(Date.now() / 1000))).toBe(true);

    await page.reload();
    const row = page.getByTestId("delivery-row").filter({ hasText: name });
    await expect(row).toContainText("delivered");
    await expect(row).toContainText("HTTP 204");
    await db.approval.update({ where: { id: approval.id }, data: { status: "cancelled" } });
  } finally {
    await db.webhook.deleteMany({ where: { name } });
    await new Promise<void>((r) => server.close(() => r()));
  }
});
