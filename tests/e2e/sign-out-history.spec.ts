import { unique } from "../support/factories";
import { expect, signInViaApi, test } from "./support/fixtures";

/**
 * After signing out, the browser's history must not show what the dashboard showed: every page
 * is sent `no-store` (HTML and the payloads of client-side navigation), so neither a shared cache
 * nor the back/forward cache keeps it, and going back asks the server again, which sends the
 * person to sign in.
 */
test("after signing out, Back shows the sign-in page, not the pages seen before; every page is no-store", async ({ page, createUser, db }) => {
  const admin = await createUser("admin");
  const agent = await db.agent.create({ data: { name: unique("history-agent"), ownerId: admin.id } });
  await signInViaApi(page.request, admin.email, admin.password);

  const documents: Array<{ url: string; cacheControl: string }> = [];
  page.on("response", (res) => {
    const type = res.headers()["content-type"] ?? "";
    if (res.request().resourceType() === "document" || type.startsWith("text/x-component")) {
      documents.push({ url: res.url(), cacheControl: res.headers()["cache-control"] ?? "" });
    }
  });

  // Searched for: the browser tests share one database, and the list's first page may hold others.
  await page.goto(`/agents?q=${encodeURIComponent(agent.name)}`);
  await expect(page.getByText(agent.name)).toBeVisible();
  // A client-side navigation (an RSC payload) and a full load of a detail page.
  await page.getByRole("link", { name: agent.name }).click();
  await expect(page).toHaveURL(new RegExp(`/agents/${agent.id}$`));
  await page.goto("/account");
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login/);

  for (const back of [1, 2]) {
    await page.goBack();
    // Whatever the history entry was, the server is asked again and answers with the sign-in page.
    await expect(page, `Back ×${back}`).toHaveURL(/\/login/);
    await expect(page.getByText(agent.name), `Back ×${back}`).toHaveCount(0);
    await expect(page.getByRole("heading", { name: "Sign in to Bulkhead" })).toBeVisible();
  }

  expect(documents.length).toBeGreaterThanOrEqual(4);
  for (const d of documents) expect(d.cacheControl, d.url).toMatch(/no-store/);
});

test("every answer of the sign-in endpoints is no-store: the sign-out page carries a CSRF token", async ({ request }) => {
  for (const path of ["/api/auth/signout", "/api/auth/signin", "/api/auth/providers", "/api/auth/verify-request", "/api/auth/error", "/api/auth/csrf", "/api/auth/session"]) {
    const res = await request.get(path, { maxRedirects: 0 });
    expect(res.headers()["cache-control"] ?? "", path).toMatch(/no-store/);
  }
});
