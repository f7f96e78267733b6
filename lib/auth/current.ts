import "server-only";
import { headers } from "next/headers";
import { forbidden, redirect } from "next/navigation";
import { connection } from "next/server";
import { AppError } from "@/lib/errors/app-error";
import { DATABASE_UNAVAILABLE_MESSAGE } from "@/lib/db/errors";
import type { Actor } from "./actor";
import { auth } from "./next-auth";
import { PAGE_HEADER, signInPath } from "./return-to";
import { roleCan, type Permission } from "./roles";

/** The signed-in user as an Actor, or null. The session row was re-validated by the jwt callback. */
export async function currentActor(): Promise<Actor | null> {
  // Request time only: without a session cookie next-auth makes a CSRF token from random bytes,
  // which a router prefetch (`Next-Router-Prefetch`) would otherwise try to prerender, logging an
  // error on every such request (tests/e2e/request-logs.spec.ts). A prefetch stops here.
  await connection();
  const session = await auth();
  // Not "signed out": the session could not be checked. Nobody is let in, and nobody is told to sign in again.
  if (session?.databaseUnavailable) throw new AppError("DATABASE_UNAVAILABLE", "The session could not be checked: the database did not answer.", { userMessage: DATABASE_UNAVAILABLE_MESSAGE });
  const b = session?.bulkhead;
  if (!b) return null;
  return { kind: "user", userId: b.userId, email: b.email, role: b.role, sessionId: b.sessionId, authenticatedAt: b.authenticatedAt, authMethod: b.authMethod };
}

/** For pages: redirect to sign-in when signed out, render 403 when the role lacks `permission`. */
export async function requirePageActor(permission: Permission = "read"): Promise<Actor & { kind: "user" }> {
  const actor = await currentActor();
  // Signed out: to the sign-in page, which comes back here afterwards (lib/auth/return-to.ts).
  if (!actor || actor.kind !== "user") redirect(signInPath((await headers()).get(PAGE_HEADER)));
  if (!roleCan(actor.role, permission)) forbidden();
  return actor;
}

/** For server actions and route handlers: throws 401/403 AppErrors. */
export async function requireActor(permission: Permission): Promise<Actor> {
  const actor = await currentActor();
  if (!actor) throw new AppError("UNAUTHENTICATED", "Sign in first.");
  if (actor.kind !== "system" && !roleCan(actor.role, permission)) {
    throw new AppError("FORBIDDEN", `Role ${actor.role} may not ${permission}`, { userMessage: "Your role does not allow this." });
  }
  return actor;
}
