import http from "node:http";
import type { APIRequestContext } from "@playwright/test";
import { test, expect, signInViaApi } from "./support/fixtures";

const PER_ACTOR = 8;

/** The session cookie header of a signed-in API context. */
async function cookieHeader(ctx: APIRequestContext): Promise<string> {
  const { cookies } = await ctx.storageState();
  return cookies.map((c) => `${c.name}=${c.value}`).join("; ");
}

/** Opens GET /api/v1/approvals/events and resolves once its status is known; the stream stays open. */
function openStream(baseURL: string, cookie: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: () => Promise<string>; close: () => void }> {
  return new Promise((resolve, reject) => {
    const req = http.get(new URL("/api/v1/approvals/events", baseURL), { headers: { cookie } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      const done = new Promise<string>((r) => res.on("end", () => r(text)).on("close", () => r(text)));
      res.on("data", (chunk: string) => (text += chunk));
      res.on("error", () => undefined);
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: () => done, close: () => req.destroy() });
    });
    req.on("error", (e) => ((e as NodeJS.ErrnoException).code === "ECONNRESET" ? undefined : reject(e)));
  });
}

test("one person's live approval streams are bounded; closing one frees its slot; others are not affected", async ({ api, createUser, playwright }) => {
  const baseURL = test.info().project.use.baseURL!;
  const auditor = await createUser("auditor");
  await signInViaApi(api, auditor.email, auditor.password);
  const cookie = await cookieHeader(api);
  const open = [];
  for (let i = 0; i < PER_ACTOR; i++) open.push(await openStream(baseURL, cookie));
  expect(open.map((s) => s.status)).toEqual(Array(PER_ACTOR).fill(200));

  const refused = await openStream(baseURL, cookie);
  expect(refused.status).toBe(429);
  expect(refused.headers["retry-after"]).toBe("5");
  const body = JSON.parse(await refused.body()) as { error: string; message: string };
  expect(body).toMatchObject({ error: "rate_limited" });
  expect(body.message).toContain(`${PER_ACTOR} live approval streams open`);

  // Someone else still gets one.
  const other = await createUser("auditor");
  const otherCtx = await playwright.request.newContext({ baseURL, extraHTTPHeaders: { origin: new URL(baseURL).origin } });
  await signInViaApi(otherCtx, other.email, other.password);
  const theirs = await openStream(baseURL, await cookieHeader(otherCtx));
  expect(theirs.status).toBe(200);
  theirs.close();

  // A closed stream's slot comes back once the server sees the client go.
  open.pop()!.close();
  await expect
    .poll(async () => {
      const s = await openStream(baseURL, cookie);
      if (s.status === 200) open.push(s);
      else s.close();
      return s.status;
    }, { timeout: 10_000 })
    .toBe(200);
  for (const s of open) s.close();
  await otherCtx.dispose();
});
