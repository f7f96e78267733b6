import { unique } from "../support/factories";
import { actionId } from "./support/actions";
import { expect, signInViaApi, test } from "./support/fixtures";

/**
 * Headers Next.js uses between its own parts (a proxy's subrequest marker, data and invoke hints)
 * path spellings a router may normalise differently from the proxy's matcher, and query
 * parameters Next.js reads itself. Sent by a
 * client, none of them skips proxy.ts (its CSP and its refusal of cross-site posts), and none
 * gets a page's data without a session: the pages and actions check the session themselves.
 */
const INTERNAL_HEADERS: Array<Record<string, string>> = [
  { "x-middleware-subrequest": "proxy:proxy:proxy:proxy:proxy" },
  { "x-middleware-subrequest": "middleware:middleware:middleware:middleware:middleware" },
  { "x-middleware-subrequest": "src/proxy:src/proxy:src/proxy:src/proxy:src/proxy" },
  { "x-nextjs-data": "1" },
  { "x-invoke-path": "/login", "x-invoke-query": "{}" },
  { "x-now-route-matches": "1" },
  { "x-matched-path": "/login" },
];

test("Next.js's internal headers do not skip the proxy or the pages' own session checks", async ({ request, playwright, createUser, db }, testInfo) => {
  const baseURL = testInfo.project.use.baseURL!;
  const admin = await createUser("admin");
  const agent = await db.agent.create({ data: { name: unique("bypass-agent"), ownerId: admin.id } });
  const victim = await playwright.request.newContext({ baseURL });
  await signInViaApi(victim, admin.email, admin.password);
  for (const headers of INTERNAL_HEADERS) {
    const what = JSON.stringify(headers);
    // proxy.ts ran: the page has its CSP.
    const login = await request.get("/login", { headers });
    expect(login.headers()["content-security-policy"], what).toContain("'nonce-");
    // proxy.ts ran: a cross-site post with the admin's cookie is refused before any action (one
    // the build has: an unknown one is answered before proxy.ts, tests/e2e/request-logs.spec.ts).
    const post = await victim.post("/agents", { headers: { ...headers, origin: "https://evil.example", "next-action": actionId("registerAgentAction"), "content-type": "text/plain" }, data: "[null,{}]", maxRedirects: 0 });
    expect(post.status(), what).toBe(403);
    // Signed out, the pages send the visitor to sign in and show nothing, as HTML or as an RSC payload.
    for (const path of ["/agents", `/agents/${agent.id}`, "/agents/index.rsc", "/agents.rsc", "/AGENTS", "/agents/", `/agents/${agent.id}.`]) {
      for (const extra of [{}, { rsc: "1" }] as Array<Record<string, string>>) {
        const res = await request.get(path, { headers: { ...headers, ...extra } });
        expect(await res.text(), `${path} ${what} ${JSON.stringify(extra)}`).not.toContain(agent.name);
      }
    }
    const api = await request.get("/api/v1/agents", { headers });
    expect(api.status(), what).toBe(401);
  }
  // Query parameters Next.js reads itself (locales, data requests, the RSC cache key).
  for (const q of ["__nextLocale=en", "__nextDefaultLocale=en", "__nextDataReq=1", "__nextInferredLocaleFromDefault=1", "_rsc=1", "__flight__=1", "__nextBypass=1"]) {
    expect(await (await request.get(`/agents?${q}`)).text(), q).not.toContain(agent.name);
    expect((await request.get(`/api/v1/agents?${q}`)).status(), q).toBe(401);
  }
  await victim.dispose();
});
