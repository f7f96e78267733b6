import type { Prisma } from "@/lib/generated/prisma/client";
import type { Db } from "@/lib/db/client";
import { auditActor, type Actor } from "@/lib/auth/actor";
import { sanitiseJson, sanitiseText, summariseNotes, isStorableJson, type JsonLimits, type SanitiseNote } from "./sanitise";

/** The stable shape of an audit event; the hash chain is added by the audit writer later. */
export interface AuditEventInput {
  type: string;
  /** An Actor, or a plain reference when only the id is known (e.g. at sign-in). */
  actor: Actor | AuditActorRef;
  agentId?: string | null;
  taskId?: string | null;
  outcome?: string | null;
  effect?: string | null;
  reason?: string | null;
  ruleId?: string | null;
  data?: Prisma.InputJsonValue;
}

export interface AuditActorRef {
  actorType: "user" | "agent" | "api_key" | "system";
  actorId: string;
}

type Tx = Pick<Db, "auditEvent">;

/** Only what PostgreSQL cannot store is changed: sizes are the callers' business here. */
const TEXT_ONLY: JsonLimits = { maxStringChars: Number.MAX_SAFE_INTEGER, maxKeyChars: Number.MAX_SAFE_INTEGER, maxArrayItems: Number.MAX_SAFE_INTEGER, maxKeys: Number.MAX_SAFE_INTEGER, maxDepth: 1000, maxNodes: Number.MAX_SAFE_INTEGER };

/**
 * The event with NUL characters and lone surrogates replaced (U+FFFD) in every text field and
 * in data, as lib/audit/sanitise.ts does for the worker, with `data.sanitised` saying where:
 * an event is never lost because some text in it cannot be stored. Events without such text
 * (the JSON test finds none) are returned as they are.
 */
export function storableEvent(event: AuditEventInput): AuditEventInput {
  if (isStorableJson(JSON.stringify(event, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)))) return event;
  const notes: SanitiseNote[] = [];
  const text = (v: string | null | undefined, name: string) => (typeof v === "string" ? sanitiseText(v, Number.MAX_SAFE_INTEGER, name, notes) : v);
  const data = event.data === undefined ? undefined : sanitiseJson(event.data, TEXT_ONLY, "data", notes);
  const cleaned = {
    ...event,
    type: text(event.type, "type")!,
    reason: text(event.reason, "reason"),
    outcome: text(event.outcome, "outcome"),
    effect: text(event.effect, "effect"),
    ruleId: text(event.ruleId, "ruleId"),
    actor: "kind" in event.actor ? event.actor : { ...event.actor, actorId: text(event.actor.actorId, "actorId")! },
  };
  const sanitised = summariseNotes(notes);
  const isObject = typeof data === "object" && data !== null && !Array.isArray(data);
  return { ...cleaned, data: (isObject ? { ...(data as object), sanitised } : { value: data ?? null, sanitised }) as unknown as Prisma.InputJsonValue };
}

/**
 * The event with the account of a system actor that names one (the CLI's: `data.osUser`): the
 * CLI acts as Bulkhead itself (`system`/`cli`), and its events said nothing of who ran it.
 */
function withOsUser(input: AuditEventInput): AuditEventInput {
  const actor = input.actor;
  if (!("kind" in actor) || actor.kind !== "system" || !actor.osUser) return input;
  const data = input.data ?? {};
  if (typeof data !== "object" || data === null || Array.isArray(data)) return input;
  return { ...input, data: { ...(data as Record<string, Prisma.InputJsonValue>), osUser: actor.osUser } };
}

/** Writes one audit event; call it inside the transaction of the change it records. */
export async function recordAuditEvent(tx: Tx, input: AuditEventInput): Promise<bigint> {
  const event = storableEvent(withOsUser(input));
  const row = await tx.auditEvent.create({
    data: {
      type: event.type,
      ...("kind" in event.actor ? auditActor(event.actor) : event.actor),
      agentId: event.agentId ?? null,
      taskId: event.taskId ?? null,
      outcome: event.outcome ?? null,
      effect: event.effect ?? null,
      reason: event.reason ?? null,
      ruleId: event.ruleId ?? null,
      data: event.data ?? {},
    },
    select: { id: true },
  });
  return row.id;
}
