import { test, expect } from "./support/fixtures";

/**
 * DNS rebinding: a web page the person visits, on a name its author controls, makes that name
 * resolve to the dashboard's address after the page has loaded. Its later requests reach the
 * dashboard as same-origin requests the page can read. Chromium's Private Network Access blocks
 * this for pages from the public internet; other browsers do not, so the browser here runs with it
 * off and the name mapped to loopback, as the attacker's DNS would have it.
 *
 * Before, the dashboard answered any name: the page could read the sign-in CSRF token, guess
 * passwords (and lock every loopback sign-in out with wrong guesses), and with a right one act
 * as that person, since an Origin naming the request's own Host passed the same-origin checks.
 */
const REBOUND = "rebind.attacker.test";

test("a page on a name rebound to the dashboard's address gets nothing from it: no sign-in, no session, no data", async ({ playwright, createUser, db, baseURL }) => {
  const admin = await createUser("admin");
  const port = new URL(baseURL!).port;
  const browser = await playwright.chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    args: ["--no-sandbox", `--host-resolver-rules=MAP ${REBOUND} 127.0.0.1`, "--disable-features=BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights,PrivateNetworkAccessRespectPreflightResults,LocalNetworkAccessChecks"],
  });
  try {
    const page = await browser.newPage();
    const origin = `http://${REBOUND}:${port}`;
    // The attacker's page, as served before the name was rebound; every later request goes to the dashboard.
    await page.route(`${origin}/cat-pictures`, (route) => route.fulfill({ contentType: "text/html", body: "<html><body>cat pictures</body></html>" }));
    await page.goto(`${origin}/cat-pictures`);
    const seen = await page.evaluate(
      async ({ email, password }) => {
        const out: Record<string, number> = {};
        const csrf = await fetch("/api/auth/csrf");
        out.csrf = csrf.status;
        const token = csrf.ok ? ((await csrf.json()) as { csrfToken: string }).csrfToken : "";
        const signIn = await fetch("/api/auth/callback/password", { method: "POST", body: new URLSearchParams({ csrfToken: token, email, password }), redirect: "manual" });
        out.signIn = signIn.type === "opaqueredirect" ? 302 : signIn.status;
        out.me = (await fetch("/api/v1/me")).status;
        out.agents = (await fetch("/api/v1/agents", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: `rebound-${Date.now()}` }) })).status;
        out.loginPage = (await fetch("/login")).status;
        return out;
      },
      { email: admin.email, password: admin.password },
    );
    expect(seen).toEqual({ csrf: 421, signIn: 421, me: 421, agents: 421, loginPage: 421 });
    expect(await db.agent.count({ where: { name: { startsWith: "rebound-" } } })).toBe(0);
    expect(await db.session.count({ where: { userId: admin.id } })).toBe(0);

    // The dashboard's own names still work: its address, and localhost (which no page can rebind).
    for (const host of ["127.0.0.1", "localhost"]) {
      const res = await page.request.get(`http://${host}:${port}/api/auth/csrf`);
      expect(res.status(), host).toBe(200);
    }
  } finally {
    await browser.close();
  }
});
