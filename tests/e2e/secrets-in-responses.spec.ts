import type { Page } from "@playwright/test";
import { expect, signInViaApi, test } from "./support/fixtures";
import { holdRequest } from "./support/held";
import { unique } from "../support/factories";
import { createHash } from "node:crypto";
import { randomSecret } from "../integration/vault/secret-search";

/**
 * What the dashboard sends a browser must never hold a secret: not a credential's value (one the
 * proxy injects, or one it keeps), an API key, a webhook's signing secret or URL, a task token or
 * a session token after they were handed out once, the process keys (the dashboard's, the report
 * signer's, the worker's, the master key the dashboard never holds) or a database password.
 *
 * Each role signs in in a real browser and goes through every page (loaded, and reached by client
 * navigation, so the RSC payloads are read too), every link those pages offer (downloads, the PDF
 * report and its signature, exports), every read of the API, and the live approval stream. Every
 * response body is searched for every secret in every spelling (itself, base64, base64url, hex,
 * and 12-character windows of those every 3 characters, so any 14 characters of one are found).
 */

function needlesOf(value: string): string[] {
  const bytes = Buffer.from(value, "utf8");
  const out = new Set<string>();
  for (const form of [value, bytes.toString("base64").replace(/=+$/, ""), bytes.toString("base64url"), bytes.toString("hex")]) {
    if (form.length <= 12) out.add(form);
    for (let i = 0; i + 12 <= form.length; i += 3) out.add(form.slice(i, i + 12));
    out.add(form.slice(-12));
  }
  return [...out];
}

interface Secret {
  name: string;
  needles: string[];
}

function secret(name: string, value: string, whole = false): Secret {
  return { name, needles: whole ? [value] : needlesOf(value) };
}

function passwordOf(url: string): string | null {
  try {
    const p = decodeURIComponent(new URL(url).password);
    return p.length >= 8 ? p : null;
  } catch {
    return null;
  }
}

const PAGES = ["/agents", "/agents/new", "/tasks", "/tasks/new", "/approvals", "/audit", "/replay", "/sandboxes", "/services", "/settings", "/settings/api-keys", "/settings/webhooks", "/users", "/account"];

/** Records the body of every response the page receives (the endless event stream aside). */
function record(page: Page, into: Array<{ url: string; body: Promise<string> }>): void {
  page.on("response", (r) => {
    if ((r.headers()["content-type"] ?? "").includes("text/event-stream")) return;
    into.push({ url: r.url(), body: r.body().then((b) => b.toString("latin1") + "\n" + b.toString("utf8")).catch(() => "") });
  });
}

/** The live stream for a signed-in browser: what it sends in its first seconds. */
async function readStream(baseURL: string, cookie: string, path: string, ms = 3000): Promise<string> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), ms);
  let text = "";
  try {
    const res = await fetch(new URL(path, baseURL), { headers: { cookie, accept: "text/event-stream" }, signal: abort.signal });
    const reader = res.body!.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString("utf8");
    }
  } catch {
    // aborted: what arrived so far is what we search
  } finally {
    clearTimeout(timer);
  }
  return text;
}

test("no response the dashboard sends any role, on any page, link, API read, export, report or stream, holds a secret", async ({ browser, api, createUser, db, baseURL }) => {
  test.setTimeout(900_000);
  // Everything below is created by an admin through the API, as a person would.
  const admin = await createUser("admin");
  await signInViaApi(api, admin.email, admin.password);
  const agent = ((await (await api.post("/api/v1/agents", { data: { name: unique("secrets-agent") } })).json()) as { agent: { id: string } }).agent;
  const taskRes = await api.post("/api/v1/tasks", { data: { agentId: agent.id, purpose: "search for secrets", ttl: "30m" } });
  expect(taskRes.status()).toBe(201);
  const task = ((await taskRes.json()) as { task: { id: string } }).task;
  const minted = await api.post(`/api/v1/tasks/${task.id}/tokens`);
  expect(minted.status()).toBe(201);
  const { token } = (await minted.json()) as { token: string };
  const credentialSecret = randomSecret("cred_");
  const withheldSecret = randomSecret("kept_");
  for (const [value, environments] of [
    [credentialSecret, "*"],
    [withheldSecret, "nowhere-env"],
  ] as const) {
    const res = await api.post("/api/v1/credentials", { data: { name: unique("secret-cred"), host: `${unique("h")}.example.test`, environments, headerTemplate: "X-Key: {secret}", secret: value } });
    expect(res.status(), await res.text()).toBe(201);
  }
  const apiKeyRes = await api.post("/api/v1/api-keys", { data: { name: unique("secret-key"), role: "auditor" } });
  expect(apiKeyRes.status()).toBe(201);
  const apiKey = ((await apiKeyRes.json()) as { key: string }).key;
  const hookPath = randomSecret("hook_");
  const hookRes = await api.post("/api/v1/webhooks", { data: { name: unique("secret-hook"), url: `http://127.0.0.2:9/${hookPath}` } });
  expect(hookRes.status(), await hookRes.text()).toBe(201);
  const hookBody = (await hookRes.json()) as { webhook: { signingSecret: string } };
  const held = await holdRequest(db, { ownerId: admin.id, url: "https://backboard.railway.com/graphql/v2", body: JSON.stringify({ query: 'mutation { volumeDelete(volumeId: "vol_prod") }' }) });
  const recent = await db.auditEvent.findMany({ orderBy: { seq: "desc" }, take: 6, select: { seq: true } });

  const processSecrets = JSON.parse(process.env.E2E_PROCESS_SECRETS!) as { masterKey: string; BULKHEAD_WORKER_KEY: string; databaseUrls: string[] };
  const dashboardEnv = JSON.parse(process.env.E2E_DASHBOARD_ENV!) as Record<string, string>;
  const secrets: Secret[] = [
    secret("credential secret (injected)", credentialSecret),
    secret("credential secret (withheld)", withheldSecret),
    // A JWT's header and claims are public (the jti is listed); its signature makes it a key.
    secret("task token", token.split(".")[2]!),
    // An API key's first 12 characters ("bk_" and the prefix) identify it in lists, by design.
    secret("API key", apiKey.slice(apiKey.lastIndexOf("_") + 1)),
    secret("webhook signing secret", hookBody.webhook.signingSecret),
    secret("webhook URL path", hookPath),
    secret("master key", processSecrets.masterKey),
    secret("worker key", processSecrets.BULKHEAD_WORKER_KEY),
    secret("dashboard key", dashboardEnv.BULKHEAD_DASHBOARD_KEY!),
    secret("report signing key", dashboardEnv.BULKHEAD_REPORT_SIGNING_KEY!),
    secret("session secret (AUTH_SECRET)", dashboardEnv.AUTH_SECRET!, true),
    ...[...processSecrets.databaseUrls, process.env.E2E_DATABASE_URL!].flatMap((u) => {
      const p = passwordOf(u);
      return p ? [secret("database password", p, true)] : [];
    }),
  ];
  const leaks: string[] = [];
  let searched = 0;
  const seen = new Set<string>();
  const search = (where: string, body: string) => {
    searched++;
    // The same bytes (a script chunk every page loads, an unchanged list) are searched once.
    const digest = createHash("sha256").update(body).digest("hex");
    if (seen.has(digest)) return;
    seen.add(digest);
    for (const s of secrets) if (s.needles.some((n) => body.includes(n))) leaks.push(`${s.name} in ${where}`);
  };
  // The search finds what it looks for: the answers that handed the token and the webhook's
  // secret out, once, hold them.
  search("the minting answer", JSON.stringify(await minted.json()));
  search("the webhook's creation", JSON.stringify(hookBody));
  expect(leaks).toEqual(["task token in the minting answer", "webhook signing secret in the webhook's creation"]);
  leaks.length = 0;

  // The three roles browse side by side (each in its own browser context).
  const browse = async (role: "admin" | "approver" | "auditor") => {
    const user = await createUser(role);
    const context = await browser.newContext({ baseURL });
    const page = await context.newPage();
    const bodies: Array<{ url: string; body: Promise<string> }> = [];
    record(page, bodies);
    await signInViaApi(page.request, user.email, user.password);
    const sessionCookies = (await context.cookies()).filter((c) => c.name.includes("session-token"));
    expect(sessionCookies.length, `${role} has a session`).toBeGreaterThan(0);
    const ownSecrets = [...secrets, ...sessionCookies.map((c) => secret(`${role}'s session token`, c.value)), secret(`${role}'s password`, user.password, true)];

    const pages = [...PAGES, `/agents/${agent.id}`, `/tasks/${task.id}`, `/tasks/${task.id}/report`, `/tasks/${task.id}/report/pdf`, `/approvals/${held.approval.id}`, ...recent.map((e) => `/audit/${e.seq}`)];
    const links = new Set<string>();
    for (const path of pages) {
      await page.goto(path);
      for (const href of await page.locator("a[href]").evaluateAll((as) => as.map((a) => (a as HTMLAnchorElement).href))) {
        const u = new URL(href);
        if (u.origin === new URL(baseURL!).origin && !u.pathname.startsWith("/api/auth/signout")) links.add(u.pathname + u.search);
      }
    }
    // Client navigation: the same pages as RSC payloads.
    await page.goto("/agents");
    for (const href of await page.getByRole("navigation", { name: "Main" }).locator("a[href]").evaluateAll((as) => as.map((a) => a.getAttribute("href")!))) {
      await page.getByRole("navigation", { name: "Main" }).locator(`a[href="${href}"]`).click();
      await page.waitForURL((u) => u.pathname === href);
    }
    // Every link the pages offer (downloads, exports, event pages), and every read of the API.
    const reads = [
      ...[...links].slice(0, 30),
      "/api/auth/session",
      "/api/v1/me",
      "/api/v1/agents",
      `/api/v1/agents/${agent.id}`,
      "/api/v1/tasks",
      `/api/v1/tasks/${task.id}`,
      `/api/v1/tasks/${task.id}/tokens`,
      `/api/v1/tasks/${task.id}/report`,
      "/api/v1/approvals",
      `/api/v1/approvals/${held.approval.id}`,
      "/api/v1/audit?limit=200",
      ...recent.map((e) => `/api/v1/audit/${e.seq}`),
      "/api/v1/audit/export?format=csv",
      "/api/v1/audit/export?format=jsonl",
      "/api/v1/audit/export?format=ocsf",
      "/api/v1/audit/keys",
      "/api/v1/credentials",
      "/api/v1/api-keys",
      "/api/v1/webhooks",
      "/api/v1/webhooks/deliveries",
      "/api/v1/sandboxes",
      "/api/v1/settings/approvals",
      "/api/v1/ca",
      "/api/v1/openapi.json",
      "/.well-known/jwks.json",
      "/.well-known/bulkhead-audit-keys.json",
    ];
    for (const path of reads) {
      const res = await page.request.get(path, { maxRedirects: 0 });
      const b = await res.body();
      search(`${role}: GET ${path}`, b.toString("latin1") + "\n" + b.toString("utf8"));
      for (const [k, v] of Object.entries(res.headers())) search(`${role}: GET ${path} header ${k}`, v);
    }
    const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join("; ");
    const stream = await readStream(baseURL!, cookie, "/api/v1/approvals/events");
    expect(stream, `${role}'s stream answered`).toContain("event:");
    search(`${role}: approvals stream`, stream);

    for (const b of bodies) search(`${role}: ${b.url}`, await b.body);
    // This role's own session token and password, in what this role received.
    for (const s of ownSecrets.slice(secrets.length)) for (const b of bodies) if (s.needles.some((n) => b.url.includes(n))) leaks.push(`${s.name} in a URL`);
    const all = (await Promise.all(bodies.map((b) => b.body))).join("\n");
    for (const s of ownSecrets.slice(secrets.length)) if (s.needles.some((n) => all.includes(n))) leaks.push(`${s.name} in a response to ${role}`);
    expect(bodies.length, `${role}'s pages were recorded`).toBeGreaterThan(PAGES.length);
    await context.close();
  };
  await Promise.all([browse("admin"), browse("approver"), browse("auditor")]);
  expect(searched).toBeGreaterThan(100);
  expect(leaks).toEqual([]);
});
