import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * Webhook signatures: HMAC-SHA256 over `<timestamp>.<body>` with the webhook's secret, sent as
 * `Bulkhead-Signature: t=<unix seconds>,v1=<hex>`. Binding the timestamp lets a receiver refuse
 * replays older than a few minutes; binding the exact body bytes means nothing can be changed.
 */
export const SIGNATURE_HEADER = "bulkhead-signature";

export function signPayload(secret: string, timestamp: number, body: string): string {
  const mac = createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex");
  return `t=${timestamp},v1=${mac}`;
}

/** What a receiver does: recompute and compare in constant time, within a tolerance. */
export function verifySignature(secret: string, header: string, body: string, nowSeconds: number, toleranceSeconds = 300): boolean {
  const parts = Object.fromEntries(header.split(",").map((p) => p.split("=", 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(nowSeconds - t) > toleranceSeconds || typeof parts.v1 !== "string") return false;
  const expected = Buffer.from(signPayload(secret, t, body).split("v1=")[1]!, "hex");
  const got = Buffer.from(parts.v1, "hex");
  return got.length === expected.length && timingSafeEqual(got, expected);
}
