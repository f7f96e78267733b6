import "server-only";
import NextAuth from "next-auth";
import { headers } from "next/headers";
import { loadAppConfig } from "@/lib/config/app";
import { getDb } from "@/lib/db/client";
import { buildAuthConfig } from "./auth-config";

/**
 * The request's headers: next-auth hands route handlers' requests to the configuration, but not
 * those of server actions and pages (`signIn()`, `auth()`), which are read from Next.js instead.
 */
async function incomingHeaders(request: { headers: Headers } | undefined): Promise<{ headers: Headers } | undefined> {
  if (request) return request;
  try {
    return { headers: new Headers(await headers()) };
  } catch {
    // Outside a request (nothing signs in there).
    return undefined;
  }
}

/** next-auth bound to this process's configuration and database (see lib/auth/auth-config.ts), per request. */
export const { handlers, auth, signIn, signOut } = NextAuth(async (request) => buildAuthConfig(loadAppConfig(), getDb(), await incomingHeaders(request)));
