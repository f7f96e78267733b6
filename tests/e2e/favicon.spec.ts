import { expect, test } from "./support/fixtures";

/**
 * Every page asked the browser for /favicon.ico, which was a 404: an error in the console of
 * every page a new user opened ("Failed to load resource: ... 404").
 */
test("pages load without a failed resource: the favicon exists", async ({ page }) => {
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  await page.goto("/login");
  await expect(page.getByRole("button", { name: "Sign in" })).toBeVisible();
  const icon = await page.request.get("/favicon.ico");
  expect(icon.status()).toBe(200);
  expect(icon.headers()["content-type"]).toMatch(/^image\//);
  // The browser fetches the icon on its own after the page loaded.
  await page.waitForTimeout(1000);
  expect(errors).toEqual([]);
});
