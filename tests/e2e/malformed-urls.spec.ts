import { test, expect, signInViaApi } from "./support/fixtures";

/** Every dynamic page and route of the dashboard, with {} where the segment goes. */
const DYNAMIC = [
  "/agents/{}",
  "/approvals/{}",
  "/audit/{}",
  "/tasks/{}",
  "/tasks/{}/report",
  "/tasks/{}/report/pdf",
  "/setup/{}",
  "/api/auth/{}",
  "/api/v1/agents/{}",
  "/api/v1/agents/{}/suspend",
  "/api/v1/approvals/{}",
  "/api/v1/audit/{}",
  "/api/v1/credentials/{}",
  "/api/v1/sandboxes/{}",
  "/api/v1/tasks/{}",
  "/api/v1/tasks/{}/report",
  "/api/v1/tokens/{}/revoke",
  "/api/v1/users/{}/approver-scope",
  "/api/v1/webhooks/{}",
  "/api/v1/api-keys/{}",
];
/** Segments whose percent-encoding does not decode (not UTF-8, cut short, a bare %). */
const UNDECODABLE = ["%ff", "%E0%A4%A", "%", "%c0%af", "ok%ED%A0%80"];

test.describe("a method the dashboard does not serve", () => {
  test("is a 405 naming the methods it serves, on pages and routes, signed out or in, never a 500", async ({ request, api, createUser }) => {
    const admin = await createUser("admin");
    await signInViaApi(api, admin.email, admin.password);
    for (const client of [request, api]) {
      for (const path of ["/", "/agents", "/api/v1/me", "/api/v1/agents", "/api/auth/session", "/setup/x"]) {
        // (Node's HTTP parser itself refuses methods it does not know, TRACK among them, with a 400.)
        for (const method of ["TRACE", "PROPFIND", "PURGE", "MKCOL"]) {
          const res = await client.fetch(path, { method, maxRedirects: 0 });
          expect(res.status(), `${method} ${path}`).toBe(405);
          expect(res.headers()["allow"]).toBe("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
          const text = await res.text();
          const message = path.startsWith("/api/") ? (JSON.parse(text) as { error: string; message: string }).message : text;
          if (path.startsWith("/api/")) expect(JSON.parse(text)).toMatchObject({ error: "method_not_allowed" });
          expect(message).toContain(`does not serve "${method}" requests`);
          // TRACE echoes nothing back: not the session cookie, not a header.
          expect(text).not.toMatch(/cookie|authjs/i);
        }
      }
    }
  });
});

test.describe("a path that is not valid percent-encoding", () => {
  test("is a 400 with its reason on every dynamic page and route, signed out or in, never a 500", async ({ request, api, createUser }) => {
    const admin = await createUser("admin");
    await signInViaApi(api, admin.email, admin.password);
    for (const client of [request, api]) {
      for (const route of DYNAMIC) {
        for (const segment of UNDECODABLE) {
          const path = route.replace("{}", segment);
          for (const method of ["GET", "POST"] as const) {
            const res = await client.fetch(path, { method, maxRedirects: 0 });
            expect(res.status(), `${method} ${path}`).toBe(400);
            expect(res.headers()["cache-control"]).toBe("no-store");
            const text = await res.text();
            if (path.startsWith("/api/")) expect(JSON.parse(text), path).toMatchObject({ error: "invalid_input", message: expect.stringMatching(/not valid percent-encoding/) });
            else expect(text, path).toMatch(/^Bad request: .*not valid percent-encoding/);
          }
        }
      }
    }
  });

  test("paths that do decode are served as before", async ({ request, api, createUser }) => {
    const admin = await createUser("admin");
    await signInViaApi(api, admin.email, admin.password);
    // A valid escape (%25 is "%") reaches the route, which answers for itself: not found, not a 400.
    expect((await api.get("/api/v1/agents/%25")).status()).toBe(404);
    expect((await request.get("/api/v1/agents/%25")).status()).toBe(401);
    // The query is the route's to judge (URLSearchParams decodes leniently): a search runs.
    expect((await api.get("/api/v1/audit?q=caf%ff%C3%A9")).status()).toBe(200);
    expect((await api.get("/api/v1/me")).status()).toBe(200);
  });
});

test.describe("pages given ids and searches they cannot use", () => {
  test("an unknown approval is a 404 page, like an unknown agent or task", async ({ api, createUser }) => {
    const admin = await createUser("admin");
    await signInViaApi(api, admin.email, admin.password);
    for (const id of ["00000000-0000-4000-8000-000000000000", "x", "-1", "%25", "99999999999999999999"]) {
      for (const page of ["approvals", "agents", "tasks"]) {
        const res = await api.get(`/${page}/${id}`, { maxRedirects: 0 });
        expect(res.status(), `/${page}/${id}`).toBe(404);
      }
    }
  });

  test("a search the agent list refuses is said on the page, not a server error", async ({ page, createUser }) => {
    const admin = await createUser("admin");
    await signInViaApi(page.request, admin.email, admin.password);
    const res = await page.goto("/agents?q=vol%00ume");
    expect(res?.status()).toBe(200);
    // (Next.js adds a route announcer with role="alert" once the page hydrates: the message is found by its text.)
    await expect(page.getByText("The search cannot contain a NUL character.")).toHaveAttribute("role", "alert");
    await expect(page.getByText("No agents match")).toBeVisible();
  });
});

test.describe("a router state header that does not parse", () => {
  // The header a client-side navigation sends with `RSC: 1`: which segments the browser already
  // has. Next.js throws on one it cannot parse, and the request ended as a 500.
  const MALFORMED = ["garbage", "%5B%5D", "[", "%E0%A4%A", encodeURIComponent(JSON.stringify({ children: 1 })), encodeURIComponent('["",{"children":1}]'), '["",{}], ["",{}]'];

  /** The request a navigation makes: Next.js first sends the client to the same URL with its `_rsc` cache key. */
  async function navigate(client: import("@playwright/test").APIRequestContext, path: string, headers: Record<string, string>) {
    let res = await client.get(path, { headers, maxRedirects: 0 });
    const location = res.headers()["location"] ?? "";
    if (res.status() === 307 && location.includes("_rsc=")) res = await client.get(location, { headers, maxRedirects: 0 });
    return res;
  }

  test("is a 400 with the reason, signed out or in, never a 500; a valid one still navigates", async ({ request, api, createUser }) => {
    const admin = await createUser("admin");
    await signInViaApi(api, admin.email, admin.password);
    for (const [client, path] of [[request, "/login"], [api, "/agents"], [api, "/tasks/00000000-0000-4000-8000-000000000000"]] as const) {
      for (const state of MALFORMED) {
        const res = await navigate(client, path, { rsc: "1", "next-router-state-tree": state });
        expect(res.status(), `${path} with router state ${JSON.stringify(state)}`).toBe(400);
        expect(await res.text()).toMatch(/router state/);
        expect(res.headers()["cache-control"]).toBe("no-store");
      }
    }
    const valid = encodeURIComponent(JSON.stringify(["", { children: ["(dashboard)", { children: ["agents", { children: ["__PAGE__", {}] }] }] }]));
    const res = await navigate(api, "/agents", { rsc: "1", "next-router-state-tree": valid });
    expect(res.status()).toBe(200);
    expect(res.headers()["content-type"]).toContain("text/x-component");
  });
});

test("the image optimiser, which no page uses, is not served: no internal requests, no 500", async ({ request }) => {
  for (const url of ["/agents", "/api/v1/agents", "/favicon.ico", "/login"]) {
    const res = await request.get(`/_next/image?url=${encodeURIComponent(url)}&w=64&q=75`, { maxRedirects: 0 });
    expect(res.status(), `/_next/image of ${url}`).toBe(404);
  }
});
