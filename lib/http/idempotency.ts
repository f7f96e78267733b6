import "server-only";
import { createHash, randomUUID } from "node:crypto";
import { NextResponse } from "next/server";
import { ZodError } from "zod";
import type { Actor } from "@/lib/auth/actor";
import { openSecretText, sealSecret } from "@/lib/crypto/envelope";
import type { Db } from "@/lib/db/client";
import { AppError } from "@/lib/errors/app-error";
import { idempotencyResponseAad } from "./idempotency-aad";

/**
 * `Idempotency-Key` for the admin API's writes: an automation that retries a POST (a timeout, a
 * gateway's 502) gets the first answer again instead of a second task, token or API key.
 *
 * One row per principal and key (idempotency_keys). The first request claims it with one
 * INSERT ... ON CONFLICT DO NOTHING (race-free across processes), runs, and stores the status and
 * body of its answer, the body sealed under the dashboard key (answers can hold a secret shown
 * once: a task token, an API key). A retry with the same method, path, query and body is answered
 * from the row, with `Idempotent-Replayed: true`, without running the handler; the same key for a
 * different request is 422, and while the first still runs 409 with Retry-After. Answers that say
 * nothing about the request (5xx, a thrown non-AppError, 401/403/429, which the caller fixes and
 * retries) release the claim so the retry runs; other 4xx are deterministic and are kept. A claim
 * left running past five minutes (a crashed process) may be taken over; rows live 24 hours.
 */

export const IDEMPOTENCY_KEY_HEADER = "Idempotency-Key";
export const IDEMPOTENT_REPLAYED_HEADER = "Idempotent-Replayed";
/** How long an answer is replayed. */
export const IDEMPOTENCY_RETENTION_HOURS = 24;
/** After this long a claim still running is taken to be a crashed process's. */
export const IDEMPOTENCY_STALE_MINUTES = 5;
/** Expired rows deleted at most per new claim: the table is kept small without a sweeper. */
const SWEEP_LIMIT = 100;
const VISIBLE_ASCII = /^[\x21-\x7e]{1,255}$/;

function invalidKey(message: string): ZodError {
  return new ZodError([{ code: "custom", path: [IDEMPOTENCY_KEY_HEADER], message, input: undefined }]);
}

/** The request's Idempotency-Key: null without the header; a 400 (invalid_input) when malformed. */
export function idempotencyKeyOf(request: Request): string | null {
  const value = request.headers.get(IDEMPOTENCY_KEY_HEADER);
  if (value === null) return null;
  if (!VISIBLE_ASCII.test(value)) {
    throw invalidKey("The Idempotency-Key must be 1 to 255 visible ASCII characters (no spaces); nothing was run.");
  }
  return value;
}

/**
 * The principal a key belongs to: an API key by its id, a person by their user id and the session
 * acting. Sessions of one person do not share answers: an answer may hold a secret shown once (a
 * new API key, a task token) made under step-up, which belongs to the session that re-authenticated
 * (lib/auth/step-up.ts); another session of theirs, say a copied cookie that never did, must run the
 * request and be asked for step-up itself, not be handed the answer. (A password re-authentication
 * keeps the session's id, so a retry from the same browser is still answered.) Route handlers only
 * ever see those two; Bulkhead acting itself (CLI, start-up) does not go through HTTP, and is
 * refused rather than given a shared scope.
 */
function principalOf(actor: Actor): string {
  if (actor.kind === "api_key") return `api_key:${actor.apiKeyId}`;
  if (actor.kind === "user") return actor.sessionId ? `user:${actor.userId}:session:${actor.sessionId}` : `user:${actor.userId}`;
  throw invalidKey("An Idempotency-Key can only be used by an API key or a signed-in person.");
}

/** SHA-256 over the method, the path with its query and the raw body text. */
export function requestFingerprint(request: Request, body: string): string {
  const url = new URL(request.url);
  return createHash("sha256")
    .update(JSON.stringify([request.method.toUpperCase(), url.pathname + url.search, body]))
    .digest("hex");
}

interface Row {
  id: string;
  fingerprint: string;
  claim: string;
  status_code: number | null;
  response_sealed: string | null;
  expired: boolean;
  stale: boolean;
}

/** A claim this request holds: complete it with its answer, or release it. */
export interface IdempotencyClaim {
  kind: "claimed";
  /** Stores the answer for retries; answers that must not be replayed release the claim instead. */
  finish(response: Response, options: { storable: boolean }): Promise<void>;
  release(): Promise<void>;
}

export type IdempotencyOutcome = IdempotencyClaim | { kind: "replay"; response: NextResponse };

function keyReused(): AppError {
  return new AppError("IDEMPOTENCY_KEY_REUSED", "The Idempotency-Key was used for a different request.", {
    userMessage: "This Idempotency-Key was already used for a different request (another method, path, query or body); nothing was run. Use a new key for a new request.",
  });
}

function keyInProgress(): AppError {
  return new AppError("IDEMPOTENCY_KEY_IN_PROGRESS", "A request with this Idempotency-Key is still running.", {
    userMessage: "A request with this Idempotency-Key is still running; nothing was run. Retry shortly to get its answer.",
  });
}

/** Whether a finished answer is kept for retries: not when it says nothing about the request. */
export function replayableStatus(status: number): boolean {
  return status < 500 && status !== 401 && status !== 403 && status !== 429;
}

/**
 * Claims `key` for this request, or answers from an earlier one. Throws 422 or 409 (AppError) for
 * a different request with the same key or one still running.
 */
export async function claimIdempotencyKey(db: Db, options: { actor: Actor; key: string; fingerprint: string; dashboardKey: Buffer }): Promise<IdempotencyOutcome> {
  const principal = principalOf(options.actor);
  const { key, fingerprint, dashboardKey } = options;
  for (let attempt = 0; attempt < 5; attempt++) {
    const claim = randomUUID();
    const inserted = await db.$queryRaw<Array<{ id: string }>>`
      INSERT INTO idempotency_keys (principal, key, fingerprint, claim)
      VALUES (${principal}, ${key}, ${fingerprint}, ${claim}::uuid)
      ON CONFLICT (principal, key) DO NOTHING
      RETURNING id::text AS id`;
    if (inserted[0]) {
      await sweepExpired(db);
      return claimed(db, inserted[0].id, claim, dashboardKey);
    }
    const rows = await db.$queryRaw<Row[]>`
      SELECT id::text AS id, fingerprint, claim::text AS claim, status_code, response_sealed,
             created_at < now() - make_interval(hours => ${IDEMPOTENCY_RETENTION_HOURS}) AS expired,
             claimed_at < now() - make_interval(mins => ${IDEMPOTENCY_STALE_MINUTES}) AS stale
        FROM idempotency_keys WHERE principal = ${principal} AND key = ${key}`;
    const row = rows[0];
    if (!row) continue; // released or expired meanwhile: claim again
    if (row.expired) {
      // Never replayed: gone, and this request claims the key afresh.
      await db.$executeRaw`DELETE FROM idempotency_keys WHERE id = ${row.id}::uuid AND claim = ${row.claim}::uuid`;
      continue;
    }
    if (row.fingerprint !== fingerprint) throw keyReused();
    if (row.status_code === null || row.response_sealed === null) {
      if (!row.stale) throw keyInProgress();
      const taken = await db.$queryRaw<Array<{ id: string }>>`
        UPDATE idempotency_keys SET claim = ${claim}::uuid, claimed_at = now()
         WHERE id = ${row.id}::uuid AND claim = ${row.claim}::uuid AND status_code IS NULL
        RETURNING id::text AS id`;
      if (taken[0]) return claimed(db, row.id, claim, dashboardKey);
      continue; // someone else took it over or it finished: look again
    }
    const body = openSecretText(row.response_sealed, dashboardKey, idempotencyResponseAad(row.id));
    const response = new NextResponse(body, { status: row.status_code, headers: { "Content-Type": "application/json", [IDEMPOTENT_REPLAYED_HEADER]: "true" } });
    return { kind: "replay", response };
  }
  throw keyInProgress();
}

async function sweepExpired(db: Db): Promise<void> {
  await db.$executeRaw`
    DELETE FROM idempotency_keys WHERE id IN (
      SELECT id FROM idempotency_keys
       WHERE created_at < now() - make_interval(hours => ${IDEMPOTENCY_RETENTION_HOURS})
       ORDER BY created_at LIMIT ${SWEEP_LIMIT})`;
}

function claimed(db: Db, id: string, claim: string, dashboardKey: Buffer): IdempotencyClaim {
  const release = async () => {
    await db.$executeRaw`DELETE FROM idempotency_keys WHERE id = ${id}::uuid AND claim = ${claim}::uuid AND status_code IS NULL`;
  };
  return {
    kind: "claimed",
    release,
    async finish(response, { storable }) {
      if (!storable || !replayableStatus(response.status)) return release();
      const body = await response.clone().text();
      const sealed = sealSecret(body, dashboardKey, idempotencyResponseAad(id));
      await db.$executeRaw`
        UPDATE idempotency_keys SET status_code = ${response.status}, response_sealed = ${sealed}, completed_at = now()
         WHERE id = ${id}::uuid AND claim = ${claim}::uuid AND status_code IS NULL`;
    },
  };
}
