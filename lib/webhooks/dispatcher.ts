import type { Db } from "@/lib/db/client";
import { openSecret } from "@/lib/crypto/envelope";
import { deliveryBody, type DeliveryPayload } from "./format";
import { SIGNATURE_HEADER, signPayload } from "./sign";
import { webhookAad } from "./aad";
import { checkWebhookDestination, postToChecked, type WebhookNetworkPolicy } from "./destination";

export interface DispatchOptions {
  dashboardKey: Buffer;
  publicUrl: string;
  retryBaseMs: number;
  maxAttempts: number;
  /** Per request; a slow receiver is cut off, retried later, and never holds anything else up. */
  timeoutMs?: number;
  batch?: number;
  now?: () => Date;
  /** Where receivers may be (checked again on every attempt: DNS may have changed). */
  network: WebhookNetworkPolicy;
  /** Extra CA certificates for https receivers (tests); the system's are always trusted. */
  ca?: string | Buffer;
}

/** The wait before attempt n+1: base × 2^(n−1), at most an hour. */
export function backoffMs(attempts: number, baseMs: number): number {
  return Math.min(3600_000, baseMs * 2 ** Math.max(0, attempts - 1));
}

/**
 * Sends the deliveries that are due, once each. Rows are leased first (next_attempt_at moved
 * past the request timeout, with SKIP LOCKED), so two dashboards never send the same one at the
 * same moment and a crash mid-send only delays it. Returns how many were attempted.
 */
export async function deliverDue(db: Db, o: DispatchOptions): Promise<number> {
  const now = o.now?.() ?? new Date();
  const timeoutMs = o.timeoutMs ?? 5000;
  const lease = new Date(now.getTime() + timeoutMs + 5000);
  const due = await db.$queryRaw<Array<{ id: string; attempts: number; event: string; payload: DeliveryPayload; url: string; format: string; secret_sealed: string; webhook_id: string }>>`
    UPDATE "webhook_deliveries" d SET "next_attempt_at" = ${lease}
      FROM "webhooks" w
     WHERE w."id" = d."webhook_id" AND d."id" IN (
       SELECT "id" FROM "webhook_deliveries" WHERE "status" = 'pending' AND "next_attempt_at" <= ${now}
        ORDER BY "next_attempt_at" LIMIT ${o.batch ?? 20} FOR UPDATE SKIP LOCKED)
    RETURNING d."id", d."attempts", d."event", d."payload", w."url", w."format", w."secret_sealed", w."id" AS "webhook_id"`;
  await Promise.all(due.map((d) => send(db, d, o, timeoutMs)));
  return due.length;
}

async function send(db: Db, d: { id: string; attempts: number; payload: DeliveryPayload; url: string; format: string; secret_sealed: string; webhook_id: string }, o: DispatchOptions, timeoutMs: number) {
  const attempts = d.attempts + 1;
  let status: number | null = null;
  let error: string | null = null;
  try {
    const secret = openSecret(d.secret_sealed, o.dashboardKey, webhookAad(d.webhook_id)).toString("utf8");
    const body = deliveryBody(d.format, d.payload, o.publicUrl);
    const timestamp = Math.floor((o.now?.() ?? new Date()).getTime() / 1000);
    const url = new URL(d.url);
    const destination = await checkWebhookDestination(url, o.network);
    if (!destination.ok) {
      error = destination.code === "dns_failure" ? destination.reason : `destination refused: ${destination.reason}`;
    } else {
      status = await postToChecked(url, destination, {
        headers: { "content-type": "application/json", "user-agent": "Bulkhead-Webhooks/1", [SIGNATURE_HEADER]: signPayload(secret, timestamp, body), "bulkhead-delivery": d.id, "bulkhead-event": d.payload.event },
        body,
        timeoutMs,
        ca: o.ca,
      });
      if (status < 200 || status >= 300) error = `receiver answered ${status}`;
    }
  } catch (e) {
    error = e instanceof Error ? (/timeout|abort/i.test(e.name) || /timed out/.test(e.message) ? "timed out" : e.message).slice(0, 300) : "could not send";
  }
  const done = error === null;
  const failed = !done && attempts >= o.maxAttempts;
  const now = o.now?.() ?? new Date();
  // updateMany, not update: the webhook may have been removed while this was being sent, and its
  // deliveries with it; there is nothing left to record then, and the rest of the batch goes on.
  await db.webhookDelivery.updateMany({
    where: { id: d.id },
    data: {
      attempts,
      lastStatus: status,
      lastError: error === null ? null : error.slice(0, 300),
      status: done ? "delivered" : failed ? "failed" : "pending",
      deliveredAt: done ? now : null,
      nextAttemptAt: done || failed ? now : new Date(now.getTime() + backoffMs(attempts, o.retryBaseMs)),
    },
  });
}

/**
 * Held requests answered with 202 have nobody waiting on them, so nobody marks them expired;
 * this does, after their deadline (which queues their `expired` webhook). Requests a worker holds
 * open are expired by the worker's own timer and never touched here.
 */
export async function expireOverdueApprovals(db: Db, now = new Date()): Promise<number> {
  const r = await db.approval.updateMany({ where: { status: "pending", pollMode: true, expiresAt: { lt: new Date(now.getTime() - 2000) } }, data: { status: "expired" } });
  return r.count;
}

/** Runs the sender every second in the dashboard process until stopped. */
export function startWebhookDispatcher(db: Db, options: () => Promise<DispatchOptions>, log: (m: string) => void): () => void {
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const tick = async () => {
    try {
      const o = await options();
      await expireOverdueApprovals(db);
      while (!stopped && (await deliverDue(db, o)) > 0);
    } catch (error) {
      log(`webhook dispatcher: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (!stopped) timer = setTimeout(() => void tick(), 1000);
  };
  timer = setTimeout(() => void tick(), 1000);
  timer.unref?.();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}
