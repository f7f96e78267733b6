import type { Page } from "@playwright/test";
import { unique } from "../support/factories";
import { expect, signInViaApi, test } from "./support/fixtures";

declare global {
  interface Window {
    __cspViolations: string[];
    __pwned?: number;
    __marker?: number;
  }
}

/** Collects every CSP violation the page reports, from the first byte of every document. */
async function watchViolations(page: Page): Promise<string[]> {
  const console: string[] = [];
  page.on("console", (m) => {
    if (/Content Security Policy|Refused to (execute|load|apply|frame)/i.test(m.text())) console.push(m.text());
  });
  await page.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", (e) => window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  return console;
}

function directives(header: string | undefined): Map<string, string[]> {
  return new Map((header ?? "").split(";").map((d) => d.trim().split(/\s+/)).filter((d) => d[0]).map(([k, ...v]) => [k!, v]));
}

test("every page carries a strict CSP with a fresh nonce, runs without violations and stays interactive", async ({ page, createUser, db }) => {
  test.setTimeout(120_000);
  const admin = await createUser("admin");
  const agent = await db.agent.create({ data: { name: unique("csp-agent"), ownerId: admin.id } });
  const task = await db.task.create({ data: { agentId: agent.id, purpose: "CSP check", policyYaml: "rules: []\n", expiresAt: new Date(Date.now() + 3600_000) } });
  await signInViaApi(page.request, admin.email, admin.password);
  const consoleViolations = await watchViolations(page);

  const paths = ["/agents", "/agents/new", `/agents/${agent.id}`, "/tasks", "/tasks/new", `/tasks/${task.id}`, "/approvals", "/audit", "/services", "/users", "/settings", "/settings/api-keys", "/account", "/no-such-page", "/setup/not-a-token"];
  const nonces = new Set<string>();
  for (const path of paths) {
    const response = await page.goto(path);
    const csp = directives(response?.headers()["content-security-policy"]);
    const script = csp.get("script-src") ?? [];
    expect(script, path).toContain("'strict-dynamic'");
    const nonce = script.find((s) => s.startsWith("'nonce-"));
    expect(nonce, `${path} has no nonce`).toBeDefined();
    nonces.add(nonce!);
    for (const [name, values] of csp) {
      expect(values, `${path} ${name}`).not.toContain("'unsafe-inline'");
      expect(values, `${path} ${name}`).not.toContain("'unsafe-eval'");
    }
    expect(csp.get("frame-ancestors"), path).toEqual(["'none'"]);
    expect(csp.get("object-src"), path).toEqual(["'none'"]);
    expect(csp.get("base-uri"), path).toEqual(["'none'"]);
    expect(csp.get("form-action"), path).toEqual(["'self'"]);
    // Next.js's inline bootstrap ran (it carries the nonce), and React took over the page.
    await page.waitForFunction(() => Array.isArray((self as unknown as { __next_f?: unknown[] }).__next_f));
    await page.waitForFunction(() => document.querySelector("[data-nextjs-scroll-focus-boundary], body > div, main") !== null);
  }
  expect(nonces.size, "a nonce is never reused").toBe(paths.length);

  // Interactive: client-side navigation keeps the window (a full reload would drop the marker),
  // and client components respond.
  await page.goto("/agents");
  await page.evaluate(() => (window.__marker = 1));
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Tasks" }).click();
  await expect(page).toHaveURL(/\/tasks$/);
  expect(await page.evaluate(() => window.__marker)).toBe(1);
  await page.goto(`/tasks/${task.id}`);
  await page.getByLabel("URL").fill("https://api.github.com/repos/acme/app");
  await page.getByLabel("Method").selectOption("GET");
  await page.getByRole("button", { name: "Simulate" }).click();
  await expect(page.getByTestId("simulation")).toContainText("deny");

  expect(await page.evaluate(() => window.__cspViolations)).toEqual([]);
  expect(consoleViolations).toEqual([]);

  // From the attacker's side: markup that reaches the page (HTML injection) cannot run script:
  // inline event handlers, javascript: URLs, and inline scripts in a srcdoc frame (which inherits
  // the policy). A script created by a script that already runs is another matter: that is what
  // 'strict-dynamic' trusts, and what the nonce keeps an injection from ever being.
  await page.evaluate(() => {
    document.body.insertAdjacentHTML(
      "beforeend",
      '<img src="/no-such-image.png" onerror="window.__pwned = 1"><iframe srcdoc="<script>parent.__pwned = 2</script>"></iframe><svg><script>window.__pwned = 4</script></svg>',
    );
    const a = document.createElement("a");
    a.href = "javascript:window.__pwned = 3";
    document.body.appendChild(a);
    a.click();
  });
  await page.waitForFunction(() => window.__cspViolations.length >= 2);
  expect(await page.evaluate(() => window.__pwned)).toBeUndefined();
  expect((await page.evaluate(() => window.__cspViolations)).every((v) => /^script-src/.test(v))).toBe(true);
});

test("the sign-in page works under the policy too", async ({ page, createUser }) => {
  const user = await createUser("auditor");
  const consoleViolations = await watchViolations(page);
  const response = await page.goto("/login");
  expect(directives(response?.headers()["content-security-policy"]).get("frame-ancestors")).toEqual(["'none'"]);
  await page.getByLabel("Email").fill(user.email);
  await page.getByLabel("Password").fill(user.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/agents$/);
  expect(await page.evaluate(() => window.__cspViolations)).toEqual([]);
  expect(consoleViolations).toEqual([]);
});

test("no other site can frame the dashboard (clickjacking)", async ({ page, baseURL }) => {
  const refused = page.waitForEvent("console", (m) => /frame-ancestors/.test(m.text()));
  await page.setContent(`<iframe id="victim" src="${baseURL}/login" width="600" height="400"></iframe>`);
  await refused;
  const frame = page.frames().find((f) => f !== page.mainFrame());
  expect(await frame?.evaluate(() => document.body?.innerText ?? "").catch(() => "")).not.toContain("Sign in to Bulkhead");
});

test("session cookies: HttpOnly and SameSite=Lax; on plain-http loopback unprefixed and not Secure (the documented fallback)", async ({ page, createUser }) => {
  const user = await createUser("auditor");
  await signInViaApi(page.request, user.email, user.password);
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name.endsWith("authjs.session-token"));
  expect(session).toBeDefined();
  expect(session!.name).toBe("authjs.session-token");
  expect(session!.httpOnly).toBe(true);
  expect(session!.sameSite).toBe("Lax");
  expect(session!.secure).toBe(false);
  expect(session!.path).toBe("/");
  // JavaScript on the page cannot read it.
  await page.goto("/agents");
  expect(await page.evaluate(() => document.cookie)).not.toContain("session-token");
  // Why the fallback: Chromium treats http://127.0.0.1 as a secure context and keeps Secure and
  // __Host- cookies from it, but Safari does not, so a Secure cookie would lock Safari users of
  // a plain-http loopback dashboard out. Over https the cookies are __Host- and Secure
  // (tests/integration/auth/session-cookies.test.ts).
  expect(await page.evaluate(() => isSecureContext)).toBe(true);
});
