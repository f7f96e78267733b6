import { AppError } from "@/lib/errors/app-error";

/**
 * Stands in for `@/lib/auth/current` in tests that call route handlers in-process: next-auth
 * cannot load outside Next's runtime, and these requests carry no session cookie, so the session
 * path answers as it does for a request without one. API keys and the database stay real.
 * Use: `vi.mock("@/lib/auth/current", () => import("../../support/no-session"));`
 */
export async function requireActor(): Promise<never> {
  throw new AppError("UNAUTHENTICATED", "Sign in first.");
}

/** A Next.js route handler as the tests call it. */
export type RouteHandler<P> = (request: Request, segment: { params: Promise<P> }) => Promise<Response>;
