import { actionId } from "./support/actions";
import { expect, test } from "./support/fixtures";
import { startSecondDashboard } from "./support/second-dashboard";

/**
 * Requests anyone can send, signed in or not, that must be answered without a 5xx and without an
 * error in the dashboard's log, or a client could fill the log at will:
 * - the router's prefetches (`RSC: 1`, with `Next-Router-Prefetch: 1` or `2`) of every page:
 *   /login, every page signed out and /setup once logged a Next.js prerender error per request
 *   (next-auth made a CSRF token from random bytes, the setup page read the clock, while the page
 *   was prerendered for the prefetch);
 * - POSTs naming a server action the build does not have, in the `Next-Action` header or in a
 *   form's fields, which Next.js answers 409 or 400 and logs with a stack trace: answered the same
 *   way before Next.js sees them, unlogged (scripts/request-guard.mjs, proxy.ts).
 * A second production dashboard, the suite's own environment, with its output read by the test.
 */
const SIGNED_OUT = ["/login", "/login?error=CredentialsSignin", "/setup/not-a-valid-setup-token", "/agents", "/"];
const SIGNED_IN = ["/account", "/agents", "/agents/new", "/tasks", "/tasks/new", "/approvals", "/audit", "/services", "/sandboxes", "/replay", "/users", "/settings", "/settings/api-keys", "/settings/webhooks", "/login"];
const HEADERS: Array<Record<string, string>> = [{ RSC: "1" }, { RSC: "1", "Next-Router-Prefetch": "1" }, { RSC: "1", "Next-Router-Prefetch": "2" }];
const LOGGED_ERROR = /unstable value|Error:|⨯/;

test("router prefetches of every page and unknown server actions are answered without a 5xx and log no error", async ({ playwright, createUser }) => {
  test.setTimeout(120_000);
  const admin = await createUser("admin");
  const dashboard = await startSecondDashboard();
  const api = await playwright.request.newContext({ baseURL: dashboard.base, extraHTTPHeaders: { origin: dashboard.base } });
  try {
    const prefetchAll = async (pages: string[]) => {
      for (const page of pages) {
        for (const headers of HEADERS) {
          // Next.js answers a prefetch without its cache-busting `_rsc` with a redirect to it.
          const res = await api.get(page, { headers, maxRedirects: 2 });
          expect(res.status(), `${page} ${JSON.stringify(headers)}`).toBeLessThan(500);
        }
      }
    };
    await prefetchAll(SIGNED_OUT);
    const unknownActions = async () => {
      for (const [id, status] of [["00" + "a".repeat(40), 409], ["7f" + "0".repeat(40), 409], ["x", 400], ["", 400], ["__proto__", 400], ["a".repeat(5_000), 400]] as const) {
        for (const page of ["/login", "/agents/new", "/setup/not-a-valid-setup-token", "/no/such/page"]) {
          const res = await api.post(page, { headers: { "next-action": id, "content-type": "text/plain;charset=UTF-8" }, data: "[]", maxRedirects: 0 });
          const what = `unknown action ${id.slice(0, 12)} on ${page}`;
          expect(res.status(), what).toBe(status);
          expect(res.headers()["x-nextjs-action-not-found"], what).toBe("1");
          expect(await res.text(), what).toBe(status === 400 ? "Invalid Server Action request." : "Server Action unavailable.");
          // A form posted without JavaScript names its action in a field, or in a reference's descriptor.
          for (const multipart of [{ [`$ACTION_ID_${id}`]: "", name: "x" }, { $ACTION_REF_1: "", "$ACTION_1:0": JSON.stringify({ id, bound: null }), name: "x" }]) {
            const form = await api.post(page, { multipart, maxRedirects: 0 });
            const how = `${what}, a form field ${Object.keys(multipart)[0]!.slice(0, 16)}`;
            expect(form.status(), how).toBe(status);
            expect(form.headers()["x-nextjs-action-not-found"], how).toBe("1");
          }
        }
      }
    };
    await unknownActions();
    const { csrfToken } = (await (await api.get("/api/auth/csrf")).json()) as { csrfToken: string };
    const signedIn = await api.post("/api/auth/callback/password", { form: { csrfToken, email: admin.email, password: admin.password, callbackUrl: "/agents" }, maxRedirects: 0 });
    expect(signedIn.status()).toBe(302);
    await prefetchAll(SIGNED_IN);
    await unknownActions();
    // A known action still reaches Next.js (and its own checks): refused for its origin, not as unknown.
    const known = await api.post("/agents/new", { headers: { "next-action": actionId("registerAgentAction"), origin: "https://elsewhere.example", "content-type": "text/plain;charset=UTF-8" }, data: "[]", maxRedirects: 0 });
    expect(known.headers()["x-nextjs-action-not-found"]).toBeUndefined();
    // Errors are logged as the render ends, after the answer: give the log a moment.
    await new Promise((r) => setTimeout(r, 500));
    const errors = dashboard.logs().split("\n").filter((l) => LOGGED_ERROR.test(l));
    expect(errors, dashboard.logs()).toEqual([]);
  } finally {
    await api.dispose();
    await dashboard.stop();
  }
});
