import { dashboardKeyEnvironment } from "@/lib/keys/process-keys";
import { createTestDatabase, type TestDatabase } from "./database";
import { establishTestKeys, type TestKeys } from "./keys";
import type { RouteHandler } from "./no-session";

/**
 * Route handlers called in-process, as the dashboard runs them: against a test database of the
 * file's own, through the dashboard's database role, with real API keys. A file using these still
 * declares `vi.mock("@/lib/auth/current", () => import("../../support/no-session"))` itself
 * (vitest hoists a mock in the file that declares it): next-auth does not load outside Next.
 */
export interface RouteDatabase extends TestDatabase {
  /** The dashboard's process keys, when asked for (`keys`); in the environment as the launcher puts them. */
  keys: TestKeys | null;
}

/**
 * A test database the handlers use: its URL in `BULKHEAD_DASHBOARD_DATABASE_URL` (getDb() reads it
 * on first use) and, with `keys`, the dashboard's keys in the environment (routes that seal,
 * sign or verify need them; `{ signingKey: false }` leaves the task-token key out).
 */
export async function routeDatabase(options: { keys?: boolean | { signingKey?: boolean } } = {}): Promise<RouteDatabase> {
  const t = await createTestDatabase();
  process.env.BULKHEAD_DASHBOARD_DATABASE_URL = t.url;
  let keys: TestKeys | null = null;
  if (options.keys) {
    keys = await establishTestKeys(t.db, options.keys === true ? {} : options.keys);
    Object.assign(process.env, dashboardKeyEnvironment(keys));
  }
  return Object.assign(t, { keys });
}

export interface RouteInit<P> {
  /** GET unless given. */
  method?: string;
  /** An API key, sent as `Authorization: Bearer <key>`. */
  key?: string;
  /** The Authorization header as given (instead of `key`). */
  authorization?: string;
  /** A string or bytes are sent as they are, anything else as JSON; either way with `Content-Type: application/json` unless `headers` says otherwise. */
  body?: unknown;
  /** Added last: they override the ones above. */
  headers?: Record<string, string>;
  /** The route's path parameters. */
  params?: P;
}

/** Calls a route handler with a request for `path` on the dashboard's address. */
export function callRoute<P>(handler: RouteHandler<P>, path: string, init: RouteInit<P> = {}): Promise<Response> {
  const headers: Record<string, string> = {};
  if (init.key !== undefined) headers.authorization = `Bearer ${init.key}`;
  if (init.authorization !== undefined) headers.authorization = init.authorization;
  let body: string | Uint8Array<ArrayBuffer> | undefined;
  if (init.body !== undefined) {
    body = init.body instanceof Uint8Array ? new Uint8Array(init.body) : typeof init.body === "string" ? init.body : JSON.stringify(init.body);
    headers["content-type"] = "application/json";
  }
  Object.assign(headers, init.headers);
  const request = new Request(`http://127.0.0.1:3000${path}`, { method: init.method ?? "GET", headers, body });
  return handler(request, { params: Promise.resolve(init.params ?? ({} as P)) });
}
