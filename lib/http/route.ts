import "server-only";
import { NextResponse } from "next/server";
import { ZodError, type z } from "zod";
import { loadAppConfig } from "@/lib/config/app";
import { AppError, isAppError } from "@/lib/errors/app-error";
import { authenticateApiKey } from "@/lib/apikeys/authenticate-api-key";
import { apiKeyThrottle } from "@/lib/apikeys/failure-throttle";
import type { Actor } from "@/lib/auth/actor";
import { requireActor } from "@/lib/auth/current";
import { roleCan, type Permission } from "@/lib/auth/roles";
import { getDb } from "@/lib/db/client";
import { appKeys } from "@/lib/identity/app-keys";
import { DATABASE_UNAVAILABLE_MESSAGE, isDatabaseUnavailable } from "@/lib/db/errors";
import { JsonError, parseStrictJson } from "@/lib/semantics/json";
import { assertStorableText } from "@/lib/validation/text";
import { clientAddress } from "./client-address";
import { apiIssues } from "./form-errors";
import { checkJsonBody, checkSameOrigin, isSafeMethod } from "./csrf";
import { claimIdempotencyKey, idempotencyKeyOf, requestFingerprint, type IdempotencyClaim } from "./idempotency";
import { unknownFieldIssues, unknownQueryIssues, type QueryParameters } from "./unknown-fields";
import { MAX_JSON_BODY_BYTES, readBodyBytes } from "./body-limit";

/**
 * The field errors a domain error carries (`details.fieldErrors`, as forms show them) in the
 * shape a validation error has (`issues: [{path, message}]`), so that an API client finds the
 * field named in one place whichever check refused it (a taken name's 409, an unknown owner's 400).
 */
function fieldIssues(details: unknown): Array<{ path: string; message: string }> {
  const fieldErrors = (details as { fieldErrors?: unknown } | undefined)?.fieldErrors;
  if (!fieldErrors || typeof fieldErrors !== "object") return [];
  return Object.entries(fieldErrors).flatMap(([path, messages]) => (Array.isArray(messages) ? messages.filter((m): m is string => typeof m === "string").map((message) => ({ path, message })) : []));
}

/** The one mapping from errors to HTTP responses for route handlers. */
export function errorResponse(error: unknown): NextResponse {
  if (error instanceof ZodError) {
    return NextResponse.json(
      { error: "invalid_input", message: "The request is not valid.", issues: apiIssues(error) },
      { status: 400 },
    );
  }
  if (isAppError(error)) {
    const headers: Record<string, string> = {};
    // RFC 6750: a 401 names the scheme a client can authenticate with.
    if (error.code === "UNAUTHENTICATED") headers["WWW-Authenticate"] = 'Bearer realm="bulkhead"';
    const retryAfter = (error.details as { retryAfterSeconds?: unknown } | undefined)?.retryAfterSeconds;
    if (error.code === "RATE_LIMITED" && typeof retryAfter === "number") headers["Retry-After"] = String(retryAfter);
    if (error.code === "DATABASE_UNAVAILABLE") headers["Retry-After"] = "5";
    if (error.code === "IDEMPOTENCY_KEY_IN_PROGRESS") headers["Retry-After"] = "1";
    const issues = fieldIssues(error.details);
    return NextResponse.json(
      { error: error.code.toLowerCase(), message: error.userMessage, ...(error.details ? { details: error.details } : {}), ...(issues.length > 0 ? { issues } : {}) },
      { status: error.statusCode, headers },
    );
  }
  if (isDatabaseUnavailable(error)) {
    console.error("Database unavailable in route handler:", error instanceof Error ? error.message.split("\n").at(-1) : String(error));
    return NextResponse.json({ error: "database_unavailable", message: DATABASE_UNAVAILABLE_MESSAGE }, { status: 503, headers: { "Retry-After": "5" } });
  }
  console.error("Unhandled error in route handler", error);
  return NextResponse.json({ error: "internal", message: "Something went wrong." }, { status: 500 });
}

/** `Authorization: Bearer <token>`: the token, "" for a Bearer header without one, null for no Bearer header. */
function bearerToken(request: Request): string | null {
  const header = request.headers.get("authorization");
  if (header === null) return null;
  const match = /^Bearer(?:[ \t]+(.*))?$/i.exec(header.trim());
  return match ? (match[1] ?? "").trim() : null;
}

/**
 * The API key's actor, under the per-address limit on failures (lib/apikeys/failure-throttle.ts):
 * a failure counts towards the limit whatever was wrong with the key, and once the address is
 * locked its failures are answered 429 with Retry-After instead of 401. A valid key is always
 * let through: its holder proves what a lock is there to stop nobody from proving (a key is 256
 * random bits), and refusing it would let anyone behind the same address (a NAT, a CI runner,
 * the machine's own loopback) lock out the legitimate clients with a few bad values. Failures
 * are counted when they happen, not reserved before the lookup as sign-in attempts are: API
 * clients legitimately send many requests at once, which a reservation would refuse for a moment.
 */
async function throttledApiKey(request: Request, token: string) {
  const app = loadAppConfig();
  const db = getDb();
  const actor = await authenticateApiKey(db, token);
  if (actor) return actor;
  const address = clientAddress(request.headers, { peerToken: app.peerToken, trustedProxies: app.trustedProxies });
  if (address === null) return null;
  const throttle = apiKeyThrottle(db, app.apiKeyThrottle);
  let wait = throttle.throttle.lockedFor(address);
  if (wait === 0) {
    const lock = throttle.throttle.fail(address);
    if (!lock) return null;
    await throttle.locked(lock);
    wait = Math.max(1, Math.ceil((lock.lockedUntil.getTime() - Date.now()) / 1000));
  }
  const minutes = Math.ceil(wait / 60);
  throw new AppError("RATE_LIMITED", "Too many failed API key authentications from this address.", {
    userMessage: `Too many failed API key authentications from your network. Try again in ${minutes === 1 ? "a minute" : `${minutes} minutes`}.`,
    details: { retryAfterSeconds: wait },
  });
}

/**
 * Who is calling. An `Authorization: Bearer` header means an API key, and only that key
 * counts: if it is not a live key the answer is 401 even when a session cookie is also present,
 * so a bad key never falls back to someone's ambient session. Such requests need no CSRF check:
 * CSRF abuses credentials a browser attaches on its own (cookies, cached Basic auth), and no
 * browser attaches a Bearer token to a cross-site request. Other Authorization schemes (say,
 * Basic auth from a reverse proxy in front of the dashboard) are ignored, and the session cookie
 * decides with the usual same-origin and JSON checks.
 */
async function authenticate(request: Request, permission: Permission): Promise<Actor> {
  const token = bearerToken(request);
  if (token !== null) {
    const actor = await throttledApiKey(request, token);
    if (!actor) throw new AppError("UNAUTHENTICATED", "The API key is not valid.", { userMessage: "The API key is missing, malformed, unknown, expired or revoked." });
    if (!roleCan(actor.role, permission)) {
      throw new AppError("FORBIDDEN", `Role ${actor.role} may not ${permission}`, { userMessage: "This API key's role does not allow this." });
    }
    return actor;
  }
  // Authenticate first (401 says "sign in"), then refuse cross-site use of the session cookie.
  const actor = await requireActor(permission);
  if (!isSafeMethod(request.method)) {
    const problem = checkSameOrigin(request, [new URL(loadAppConfig().publicUrl).origin]) ?? checkJsonBody(request);
    if (problem) throw new AppError("CSRF", `Refused: ${problem}.`);
  }
  return actor;
}

interface RouteContext<P> {
  actor: Actor;
  request: Request;
  params: P;
  /**
   * The JSON body, parsed with `schema`. With `whenEmpty`, a request without a body (nothing, or
   * only white space) reads as that value; a body is always read and parsed, whatever its
   * Content-Type says (a session's writes are refused earlier unless it is JSON).
   */
  json<S extends z.ZodType>(schema: S, options?: { whenEmpty?: z.input<S> }): Promise<z.output<S>>;
}

export { MAX_JSON_BODY_BYTES };

function tooLarge(max: number): AppError {
  return new AppError("PAYLOAD_TOO_LARGE", `The request body is larger than ${max} bytes.`, { userMessage: `The request body is larger than ${max / (1024 * 1024)} MiB; nothing was read or changed.` });
}

/**
 * A body whose bytes are not the UTF-8 JSON text they are read as: compressed (a Content-Encoding
 * other than identity) or labelled another charset. Both were read as UTF-8 as they were: gzip
 * bytes failed as "not JSON", and `charset=utf-16` text was stored as whatever UTF-8 made of it.
 */
function unreadableEncoding(request: Request): string | null {
  const encoding = (request.headers.get("content-encoding") ?? "").trim().toLowerCase();
  if (encoding !== "" && encoding !== "identity") return `a body with Content-Encoding "${encoding.slice(0, 40)}" is not read: send it uncompressed`;
  const charset = /;\s*charset\s*=\s*"?([^";\s]*)/i.exec(request.headers.get("content-type") ?? "")?.[1]?.toLowerCase();
  if (charset !== undefined && charset !== "utf-8" && charset !== "utf8") return `a body in charset "${charset.slice(0, 40)}" is not read: send UTF-8`;
  return null;
}

/** The body as text, refused (413) past `max` bytes: by its Content-Length at once, else as it arrives. */
async function readBodyText(request: Request, max: number): Promise<string> {
  const unreadable = unreadableEncoding(request);
  if (unreadable) throw new AppError("INVALID_INPUT", `The request body cannot be read: ${unreadable}; nothing was changed.`);
  const body = await readBodyBytes(request, max);
  if (body === null) throw tooLarge(max);
  // UTF-8 without a leading byte order mark, as fetch's text() reads it, except that bytes that
  // are not UTF-8 are refused: text() turned them into U+FFFD, and the API stored `caf\uFFFD`
  // for what the client sent, changed without a word.
  try {
    return STRICT_UTF8.decode(body).replace(/^\uFEFF/, "");
  } catch {
    throw new AppError("INVALID_INPUT", "The request body is not valid UTF-8; nothing was read or changed.");
  }
}

const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * JSON.parse keeps the last of two equal keys (`{"role":"auditor","role":"admin"}`), while a
 * gateway, a log or a reviewer in front of Bulkhead may read the first: the change made would
 * not be the one that was looked at. The proxy's strict parser (lib/semantics/json.ts) refuses
 * such bodies, keys that differ only in case or Unicode form, keys with invisible characters,
 * and nesting deeper than any route reads; so does every route. Run after the storable-text
 * check, so a NUL or lone surrogate is still reported by the field that holds it.
 */
function refuseAmbiguousJson(text: string): void {
  try {
    parseStrictJson(text);
  } catch (error) {
    if (!(error instanceof JsonError)) throw error;
    throw new AppError("INVALID_INPUT", `The request body is refused: ${error.message}. Send each field once; nothing was changed.`);
  }
}

/**
 * What an authenticated route answers is for its caller only, now: a browser's disk cache or
 * history, or a shared cache in front of the dashboard, must not keep users, keys, audit events
 * or minted tokens for whoever uses the machine or the cache next. Pages say so themselves
 * (Next.js renders them per request) and so do downloads; JSON answers said nothing, and a
 * response without Cache-Control may be stored. A handler that sets its own keeps it.
 */
function unstored(response: NextResponse): NextResponse {
  if (!response.headers.has("cache-control")) response.headers.set("Cache-Control", "no-store");
  return response;
}

/**
 * Runs a handler under an Idempotency-Key claim: its JSON answer, or the answer of an error it
 * throws that says something about the request (an AppError, a validation error), is stored for
 * retries; an unexpected error (a bug, the database gone) or a handler's own Response (a
 * download, not kept) releases the claim so that a retry runs. A failure to store is logged and
 * the answer still sent: the change was made, and the claim stays running until it is stale.
 */
async function runClaimed(claim: IdempotencyClaim, run: () => Promise<unknown>, status: number): Promise<NextResponse> {
  let response: NextResponse;
  let storable: boolean;
  try {
    const result = await run();
    if (result instanceof Response) {
      await claim.release().catch((error: unknown) => console.error("Could not release an Idempotency-Key:", error instanceof Error ? error.message : String(error)));
      return result as NextResponse;
    }
    response = NextResponse.json(result, { status });
    storable = true;
  } catch (error) {
    response = errorResponse(error);
    storable = isAppError(error) || error instanceof ZodError;
  }
  try {
    await claim.finish(response, { storable });
  } catch (error) {
    console.error("Could not store the answer of an idempotent request:", error instanceof Error ? error.message : String(error));
  }
  return response;
}

/**
 * Wraps a route handler: every handler states the permission it needs, is authenticated (API
 * key or session) and authorised here (never by middleware alone), is CSRF-checked when a
 * session cookie is used to change state, and maps errors through errorResponse.
 */
export function apiRoute<P = Record<string, string>>(
  permission: Permission,
  handler: (ctx: RouteContext<P>) => Promise<unknown>,
  options: { status?: number; query?: QueryParameters } = {},
) {
  const query: QueryParameters = options.query ?? { names: [] };
  const route = async (request: Request, segment: { params: Promise<P> }): Promise<NextResponse> => {
    try {
      const actor = await authenticate(request, permission);
      const params = await segment.params;
      const searchParams = new URL(request.url).searchParams;
      // Text PostgreSQL cannot store (NUL, lone surrogates) is refused with a 400 naming the
      // parameter or field, for every route, before any handler sees it (lib/validation/text.ts).
      assertStorableText(searchParams);
      assertStorableText(params);
      // A query parameter the route does not read, or a single-valued one given twice, is a 400
      // naming it: `?status=pending` for `?state=` must not answer with every approval.
      const unknownQuery = unknownQueryIssues(query, searchParams);
      if (unknownQuery.length > 0) throw new ZodError(unknownQuery);
      // A write with an Idempotency-Key (lib/http/idempotency.ts) reads its body here, once, for
      // the request's fingerprint, and json() parses that text; a retry of a finished request is
      // answered from its stored answer without running the handler. Authentication and
      // permission were checked above, as for any request.
      const idempotencyKey = isSafeMethod(request.method) ? null : idempotencyKeyOf(request);
      let preRead: string | undefined;
      let claim: IdempotencyClaim | undefined;
      if (idempotencyKey !== null) {
        preRead = await readBodyText(request, MAX_JSON_BODY_BYTES);
        const db = getDb();
        const outcome = await claimIdempotencyKey(db, {
          actor,
          key: idempotencyKey,
          fingerprint: requestFingerprint(request, preRead),
          dashboardKey: (await appKeys(db)).dashboardKey,
        });
        if (outcome.kind === "replay") return unstored(outcome.response);
        claim = outcome;
      }
      const json = async <S extends z.ZodType>(schema: S, jsonOptions: { whenEmpty?: z.input<S> } = {}) => {
        const text = preRead ?? (await readBodyText(request, MAX_JSON_BODY_BYTES));
        if (jsonOptions.whenEmpty !== undefined && text.trim() === "") return schema.parse(jsonOptions.whenEmpty);
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          throw new AppError("INVALID_INPUT", "The request body is not valid JSON.");
        }
        assertStorableText(body, "the request body");
        refuseAmbiguousJson(text);
        const unknown = unknownFieldIssues(schema, body);
        if (unknown.length > 0) throw new ZodError(unknown);
        return schema.parse(body);
      };
      if (!claim) {
        const result = await handler({ actor, request, params, json });
        // A handler may answer with its own Response (a file download); otherwise JSON.
        if (result instanceof Response) return unstored(result as NextResponse);
        return unstored(NextResponse.json(result, { status: options.status ?? 200 }));
      }
      return unstored(await runClaimed(claim, () => handler({ actor, request, params, json }), options.status ?? 200));
    } catch (error) {
      return unstored(errorResponse(error));
    }
  };
  // What the route reads from the query string, for the check against the OpenAPI document.
  return Object.assign(route, { queryParameters: query });
}
