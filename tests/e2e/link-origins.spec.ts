import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import path from "node:path";
import type { APIRequestContext } from "@playwright/test";
import { expect, test } from "./support/fixtures";

/**
 * Every URL the sign-in machinery makes (the redirect after signing in, the provider URLs, the
 * identity provider's redirect_uri) has the dashboard's public origin (BULKHEAD_PUBLIC_URL),
 * whatever the request's Host, X-Forwarded-Host, X-Forwarded-Proto or Forwarded headers say
 * (no reverse proxy is configured as trusted here), and a `callbackUrl` cannot send anyone off-site.
 */
const SPOOFED: Array<[string, Record<string, string>]> = [
  ["no forwarded headers", {}],
  ["X-Forwarded-Proto and X-Forwarded-Host", { "x-forwarded-proto": "https", "x-forwarded-host": "evil.example" }],
  ["X-Forwarded-Proto alone", { "x-forwarded-proto": "https" }],
  ["Forwarded", { forwarded: "host=evil.example;proto=https" }],
];

async function passwordSignIn(request: APIRequestContext, email: string, password: string, callbackUrl: string, headers: Record<string, string>) {
  const csrf = await request.get("/api/auth/csrf", { headers });
  const { csrfToken } = (await csrf.json()) as { csrfToken: string };
  const res = await request.post("/api/auth/callback/password", { form: { csrfToken, email, password, callbackUrl }, headers, maxRedirects: 0 });
  expect(res.status(), `sign-in with ${JSON.stringify(headers)}`).toBe(302);
  return res.headers()["location"] ?? "";
}

test("the sign-in endpoint's redirect and provider URLs have the dashboard's origin, whatever forwarded headers the client sends", async ({ playwright, createUser }, testInfo) => {
  const baseURL = testInfo.project.use.baseURL!;
  const origin = new URL(baseURL).origin;
  const user = await createUser("auditor");
  for (const [what, headers] of SPOOFED) {
    const request = await playwright.request.newContext({ baseURL });
    const providers = (await (await request.get("/api/auth/providers", { headers })).json()) as Record<string, { signinUrl: string; callbackUrl: string }>;
    expect(new URL(providers.password!.signinUrl).origin, `signinUrl with ${what}`).toBe(origin);
    expect(new URL(providers.password!.callbackUrl).origin, `callbackUrl with ${what}`).toBe(origin);
    expect(await passwordSignIn(request, user.email, user.password, "/agents", headers), `redirect after sign-in with ${what}`).toBe(`${origin}/agents`);
    // Where the redirect goes, the new session works.
    expect((await request.get("/api/v1/me")).status(), what).toBe(200);
    await request.dispose();
  }
});

test("a callbackUrl that names another site, however it is spelled, leads back to the dashboard", async ({ playwright, createUser }, testInfo) => {
  const baseURL = testInfo.project.use.baseURL!;
  const origin = new URL(baseURL).origin;
  const user = await createUser("auditor");
  const attempts = ["//evil.example", "/\\evil.example", "https:evil.example", "https://evil.example/", "%2F%2Fevil.example", "/%09/evil.example", `${origin}@evil.example/`, "javascript:alert(1)", "\t//evil.example"];
  for (const callbackUrl of attempts) {
    const request = await playwright.request.newContext({ baseURL });
    const location = await passwordSignIn(request, user.email, user.password, callbackUrl, {});
    // Resolved as a browser resolves it (a backslash is a slash, a tab is dropped).
    expect(new URL(location, baseURL).origin, `callbackUrl ${JSON.stringify(callbackUrl)} -> ${location}`).toBe(origin);
    await request.dispose();
  }
});

test("the sign-in form's redirect has the dashboard's origin, whatever forwarded headers the client sends", async ({ createUser }, testInfo) => {
  const baseURL = testInfo.project.use.baseURL!;
  const origin = new URL(baseURL).origin;
  const requireFromNext = createRequire(path.resolve("node_modules/next/package.json"));
  const { encodeReply } = requireFromNext("next/dist/compiled/react-server-dom-webpack/client.node") as { encodeReply(value: unknown[]): Promise<string | FormData> };
  const manifest = JSON.parse(readFileSync(path.resolve(".next/server/server-reference-manifest.json"), "utf8")) as { node: Record<string, { exportedName?: string; workers: Record<string, { exportedName?: string }> }> };
  const id = Object.entries(manifest.node).find(([, e]) => (e.exportedName ?? Object.values(e.workers)[0]?.exportedName) === "signInWithPassword")![0];
  const user = await createUser("auditor");
  for (const [what, headers] of SPOOFED) {
    const form = new FormData();
    form.append("email", user.email);
    form.append("password", user.password);
    const res = await fetch(`${origin}/login`, {
      method: "POST",
      redirect: "manual",
      headers: { "next-action": id, origin, accept: "text/x-component", ...headers },
      body: await encodeReply([{}, form]),
    });
    expect(res.status, `the sign-in form with ${what}`).toBe(200);
    const redirect = res.headers.get("x-action-redirect") ?? "";
    expect(redirect, `the sign-in form with ${what} signed in and redirected`).not.toBe("");
    expect(new URL(redirect.split(";")[0]!, baseURL).origin, `redirect after the sign-in form with ${what}`).toBe(origin);
  }
});
