import { test as base, expect, type APIRequestContext } from "@playwright/test";
import { createPrismaClient, type Db } from "../../../lib/db/client";
import type { Role } from "../../../lib/auth/roles";
import { makeUser } from "../../support/factories";

export interface SignedInUser {
  id: string;
  email: string;
  password: string;
}

/** Signs in through next-auth's API (not the form), the way documenso's e2e tests do. */
export async function signInViaApi(request: APIRequestContext, email: string, password: string): Promise<void> {
  const { csrfToken } = (await (await request.get("/api/auth/csrf")).json()) as { csrfToken: string };
  const res = await request.post("/api/auth/callback/password", {
    form: { csrfToken, email, password, callbackUrl: "/agents" },
    maxRedirects: 0,
  });
  expect(res.status(), "sign-in redirects").toBe(302);
  expect(res.headers()["location"] ?? "").not.toContain("error");
}

export const test = base.extend<{ db: Db; createUser: (role: Role) => Promise<SignedInUser>; api: APIRequestContext }, object>({
  /** An API client that behaves like the dashboard's own pages: it sends the app's Origin. */
  api: async ({ playwright, baseURL }, use) => {
    const ctx = await playwright.request.newContext({ baseURL, extraHTTPHeaders: { origin: new URL(baseURL!).origin } });
    await use(ctx);
    await ctx.dispose();
  },
  db: async ({}, use) => {
    const db = createPrismaClient(process.env.E2E_DATABASE_URL!, 2);
    await use(db);
    await db.$disconnect();
  },
  createUser: async ({ db }, use) => {
    await use(async (role) => {
      const u = await makeUser(db, role);
      return { id: u.user.id, email: u.email, password: u.password };
    });
  },
});

export { expect };
