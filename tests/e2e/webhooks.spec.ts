import { unique } from "../support/factories";
import { expect, signInViaApi, test } from "./support/fixtures";

test("an admin cannot point a webhook at this machine, a private network or the metadata service; a public receiver is added", async ({ page, createUser, db, baseURL }) => {
  const admin = await createUser("admin");
  await signInViaApi(page.request, admin.email, admin.password);
  await page.goto("/settings/webhooks");
  const url = page.getByLabel("URL");
  await expect(page.getByText("Receivers on public addresses only; the operator can allow private networks with BULKHEAD_WEBHOOK_ALLOWED_NETWORKS.")).toBeVisible();

  const name = unique("sec-team");
  await page.getByLabel("Name").fill(name);
  for (const [target, why] of [
    ["http://169.254.169.254/latest/meta-data/iam/security-credentials/", /169\.254\.169\.254 is link-local/],
    [`${baseURL}/api/v1/users`, /127\.0\.0\.1 is loopback/],
    ["http://[::ffff:10.0.0.1]/hook", /10\.0\.0\.1/],
  ] as const) {
    await url.fill(target);
    await page.getByRole("button", { name: "Add webhook" }).click();
    const error = page.locator("#url-error");
    await expect(error).toContainText("Webhooks are sent to public addresses only:");
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
  expect(body.message).toMatch(/^Webhooks are sent to public addresses only: "localhost" is a local name/);
  expect(body.details.fieldErrors.url).toEqual([body.message]);

  await url.fill("https://hooks.example.com/services/T000/B000/e2e");
  await page.getByRole("button", { name: "Add webhook" }).click();
  await expect(page.getByTestId("webhook-secret")).toContainText("whsec_");
  await expect(page.getByRole("cell", { name: "hooks.example.com" })).toBeVisible();
  // No delivery may linger for later tests' approvals.
  await db.webhook.deleteMany({ where: { name } });
});
