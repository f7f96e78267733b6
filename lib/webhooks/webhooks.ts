import { randomBytes } from "node:crypto";
import { isIP } from "node:net";
import { z } from "zod";
import type { Db } from "@/lib/db/client";
import { recordAuditEvent } from "@/lib/audit/record";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { requireStepUp } from "@/lib/auth/step-up";
import { sealSecret } from "@/lib/crypto/envelope";
import { AppError } from "@/lib/errors/app-error";
import { visibleName } from "@/lib/validation/text";
import { webhookAad } from "./aad";
import { allowedNetworksSentence, checkWebhookDestination, refusedDestinationMessage, type WebhookNetworkPolicy } from "./destination";

export const WEBHOOK_EVENTS = ["hold", "decided", "expired", "cancelled"] as const;

export { webhookAad };

export const createWebhookInput = z
  .object({
    name: visibleName(z.string().trim().min(1, "Enter a name.").max(100, "Name must be at most 100 characters."), "Name"),
    url: z
      .url({ protocol: /^https?$/, error: "Enter an http(s) URL." })
      // Its own message: zod gives a later check without one the URL's ("Enter an http(s) URL.").
      .max(2000, "The URL must be at most 2000 characters.")
      .meta({ description: "Where to POST: a public address, or one in the networks the operator allows (BULKHEAD_WEBHOOK_ALLOWED_NETWORKS); never Bulkhead itself. Treated as a secret (Slack's URLs are): shown only by host afterwards." }),
    format: z.enum(["json", "slack"]).default("json"),
    // Each event once: a list of 100,000 "hold"s was stored and audited whole.
    events: z
      .array(z.enum(WEBHOOK_EVENTS))
      .min(1)
      .max(WEBHOOK_EVENTS.length, `List each event once (${WEBHOOK_EVENTS.join(", ")}).`)
      .refine((events) => new Set(events).size === events.length, `List each event once (${WEBHOOK_EVENTS.join(", ")}).`)
      .default([...WEBHOOK_EVENTS]),
  })
  .strict();

/**
 * Adds a webhook. Its signing secret is generated here, sealed under the dashboard's key, and
 * returned this once; afterwards nobody can read it back (rotate by adding a new webhook).
 * Adding a place that learns of every held request is a dangerous change: step-up. There is no
 * edit: re-pointing a webhook, changing its format or events, or enabling it would be the same
 * change and would need step-up too (docs/approvals.md).
 */
export async function createWebhook(db: Db, actor: Actor, dashboardKey: Buffer, network: WebhookNetworkPolicy, input: unknown): Promise<{ id: string; name: string; signingSecret: string }> {
  assertCan(actor, "settings:write");
  const data = createWebhookInput.parse(input);
  const stepUp = requireStepUp(actor, "add a webhook");
  await assertWebhookDestination(new URL(data.url), network);
  const secret = `whsec_${randomBytes(32).toString("base64url")}`;
  const id = crypto.randomUUID();
  await db.$transaction(async (tx) => {
    await tx.webhook.create({
      data: { id, name: data.name, url: data.url, format: data.format, events: data.events, secretSealed: sealSecret(secret, dashboardKey, webhookAad(id)), createdById: actor.kind === "user" ? actor.userId : null },
    });
    await recordAuditEvent(tx, { type: "webhook.created", actor, data: { webhookId: id, name: data.name, host: new URL(data.url).host, format: data.format, events: data.events, stepUp } });
  });
  return { id, name: data.name, signingSecret: secret };
}

/**
 * Refuses a receiver the sender would refuse: an address that is not public (unless the operator
 * allowed its network), a name any of whose answers is such an address, a local name, or one of
 * Bulkhead's own ports on this machine. A name that does not resolve from here is accepted (its
 * receiver may not exist yet); every delivery checks the destination again anyway.
 */
async function assertWebhookDestination(url: URL, network: WebhookNetworkPolicy): Promise<void> {
  const invalid = (message: string) => new AppError("INVALID_INPUT", message, { details: { fieldErrors: { url: [message] } } });
  if (url.username !== "" || url.password !== "") throw invalid("Put no user name or password in the URL: receivers authenticate deliveries by their signature.");
  const result = await checkWebhookDestination(url, network);
  if (!result.ok && result.code !== "dns_failure") throw invalid(refusedDestinationMessage(result, network.allowedNetworks));
}

export async function deleteWebhook(db: Db, actor: Actor, id: string): Promise<void> {
  assertCan(actor, "settings:write");
  if (!z.uuid().safeParse(id).success) throw new AppError("NOT_FOUND", "No such webhook.");
  // Removing one silences who is told of holds, as adding one chooses who is: both need a recent sign-in.
  const stepUp = requireStepUp(actor, "remove an approval webhook");
  await db.$transaction(async (tx) => {
    const removed = await tx.webhook.deleteMany({ where: { id } });
    if (removed.count === 0) throw new AppError("NOT_FOUND", "No such webhook.");
    await recordAuditEvent(tx, { type: "webhook.deleted", actor, data: { webhookId: id, stepUp } });
  });
}

/**
 * Webhooks without their URL's path or secret, each with `refused`: why deliveries to it are
 * refused, or null. A webhook saved before its destination was refused (a private or loopback
 * receiver an earlier version accepted, or BULKHEAD_WEBHOOK_ALLOWED_NETWORKS narrowed since) was
 * listed as if it worked, its failures only in each delivery's last answer. An address written as
 * such is checked against the rules now (no DNS); a name by its latest delivery's answer.
 */
export async function listWebhooks(db: Db, actor: Actor, network?: WebhookNetworkPolicy) {
  assertCan(actor, "settings:write");
  const rows = await db.webhook.findMany({
    orderBy: { createdAt: "asc" },
    select: { id: true, name: true, url: true, format: true, events: true, enabled: true, createdAt: true, deliveries: { orderBy: { createdAt: "desc" }, take: 1, select: { lastError: true } } },
  });
  return Promise.all(
    rows.map(async ({ url, events, deliveries, ...w }) => ({
      ...w,
      events: Array.isArray(events) ? events.filter((e): e is string => typeof e === "string") : [],
      host: new URL(url).host,
      createdAt: w.createdAt.toISOString(),
      refused: await refusedNow(new URL(url), deliveries[0]?.lastError ?? null, network),
    })),
  );
}

async function refusedNow(url: URL, lastError: string | null, network: WebhookNetworkPolicy | undefined): Promise<string | null> {
  if (network && isIP(url.hostname.replace(/^\[|\]$/g, "")) !== 0) {
    const checked = await checkWebhookDestination(url, network);
    if (!checked.ok && checked.code !== "dns_failure") return refusedDestinationMessage(checked, network.allowedNetworks);
    if (checked.ok) return null;
  }
  const prefix = "destination refused: ";
  return lastError?.startsWith(prefix) ? `Its latest delivery was refused (${lastError.slice(prefix.length)}). ${allowedNetworksSentence(network?.allowedNetworks ?? [])}` : null;
}

/** Recent deliveries, newest first: what was sent where, how often, and what came back. */
export async function listDeliveries(db: Db, actor: Actor, options: { webhookId?: string; limit?: number } = {}) {
  assertCan(actor, "settings:write");
  const rows = await db.webhookDelivery.findMany({
    where: options.webhookId ? { webhookId: options.webhookId } : {},
    orderBy: { createdAt: "desc" },
    take: Math.min(options.limit ?? 100, 500),
    select: { id: true, webhookId: true, approvalId: true, event: true, status: true, attempts: true, nextAttemptAt: true, lastStatus: true, lastError: true, createdAt: true, deliveredAt: true, webhook: { select: { name: true } } },
  });
  return rows.map((r) => ({
    ...r,
    webhook: r.webhook.name,
    nextAttemptAt: r.status === "pending" ? r.nextAttemptAt.toISOString() : null,
    createdAt: r.createdAt.toISOString(),
    deliveredAt: r.deliveredAt?.toISOString() ?? null,
  }));
}
