import { z } from "zod";
import { limitParam } from "@/lib/validation/text";
import type { Db } from "@/lib/db/client";
import { actorRole, assertCan, type Actor } from "@/lib/auth/actor";
import { roleCan } from "@/lib/auth/roles";
import { AppError } from "@/lib/errors/app-error";
import { pageOf, readTimeCursor, timeCursor, type ListPage } from "@/lib/db/list-page";
import type { SemanticAction } from "@/lib/semantics/types";
import { approverScope, scopeWhere } from "./approver-scope";
import { bodyView, type BodyView } from "./body-view";
import { cancelReasonText } from "./cancel";
import { approvalEffect } from "./decide-approval";
import { plainLine, type LinePart } from "./plain-language";
import { taskCreatorLabel } from "@/lib/audit/actor-label";
import { isFourEyesOn } from "./settings";

/**
 * Everything a person needs to decide one held request, as data: who asked and why (the task's
 * purpose, the agent, its owner, the scope and policy version), every semantic action as
 * structured fields with a plain-language line where the descriptor knows one, the canonical
 * request with its body pretty-printed and the dangerous parts highlighted, the deadline and
 * who has approved so far. Agent-controlled values stay values; the page marks them as such.
 */
export interface ApprovalCard {
  id: string;
  status: string;
  statusText: string | null;
  createdAt: string;
  expiresAt: string;
  effect: SemanticAction["effect"];
  task: { id: string; purpose: string; scope: string; policyVersion: number | null; currentPolicyVersion: number; createdBy: string | null; status: string };
  agent: { id: string; name: string; owner: string | null };
  actions: Array<SemanticAction & { line: LinePart[] | null }>;
  request: { method: string; url: string; scheme: string; host: string; port: string; path: string; query: string; headers: Record<string, string>; body: BodyView };
  reason: string;
  required: number;
  votes: Array<{ by: string; note: string | null; at: string }>;
  decision: { by: string | null; at: string | null; note: string | null } | null;
  /**
   * For a pending request, when four-eyes is on and the viewer is the agent's owner or the task's
   * creator: why their approval cannot release it alone (said before they try, not after).
   */
  fourEyes: string | null;
}

const idInput = z.uuid();

function parseUrl(url: string) {
  try {
    const u = new URL(url);
    return { scheme: u.protocol.replace(/:$/, ""), host: u.hostname, port: u.port || (u.protocol === "https:" ? "443" : "80"), path: u.pathname, query: u.search.replace(/^\?/, "") };
  } catch {
    return { scheme: "", host: "", port: "", path: url, query: "" };
  }
}

function statusText(status: string, cancelReason: string | null): string | null {
  if (status === "cancelled") return `Cancelled because ${cancelReasonText(cancelReason)}. Nothing was forwarded.`;
  if (status === "expired") return "Timed out: nobody decided in time, so it was refused.";
  if (status === "consumed") return "Approved and forwarded once.";
  if (status === "approved") return "Approved; waiting for the proxy to forward it once.";
  if (status === "denied") return "Denied: nothing was forwarded.";
  return null;
}

/**
 * Whether the actor reads held requests' bodies: the people who may decide them (admins, and
 * approvers within their scope, which the card's query applies). A body is what the agent was
 * about to send (customer records, a message, a migration with data in it), kept only so that
 * someone can judge it; an auditor's, or an auditor key's, read access covers the decisions
 * (method, URL, actions, outcome, as the audit log holds them), not the data.
 */
export function mayReadHeldBodies(actor: Actor): boolean {
  return roleCan(actorRole(actor), "approvals:decide");
}

/** A body the actor may not read: its size only. */
function withheldBody(size: number): BodyView {
  return size > 0
    ? { format: "withheld", size, shown: 0, truncated: false, marksBeyond: 0, segments: [] }
    : { format: "empty", size: 0, shown: 0, truncated: false, marksBeyond: 0, segments: [] };
}

export async function getApprovalCard(db: Db, actor: Actor, id: string, options: { fullBody?: boolean } = {}): Promise<ApprovalCard> {
  assertCan(actor, "read");
  if (!idInput.safeParse(id).success) throw new AppError("NOT_FOUND", "No such approval.");
  const scope = await approverScope(db, actor);
  const readsBody = mayReadHeldBodies(actor);
  const a = await db.approval.findFirst({
    where: { id, ...scopeWhere(scope) },
    // A body the actor may not read is not loaded either (up to BULKHEAD_MAX_BODY_BYTES).
    omit: { requestBody: !readsBody },
    include: {
      task: { select: { id: true, purpose: true, scope: true, policyVersion: true, status: true, createdById: true, createdBy: { select: { email: true } } } },
      agent: { select: { id: true, name: true, ownerId: true, owner: { select: { email: true } } } },
      decidedBy: { select: { email: true } },
      votes: { orderBy: { createdAt: "asc" }, select: { note: true, createdAt: true, user: { select: { email: true } } } },
    },
  });
  if (!a) throw new AppError("NOT_FOUND", "No such approval.");
  const actions = (Array.isArray(a.actions) ? a.actions : []) as unknown as SemanticAction[];
  const headers = (a.requestHeaders && typeof a.requestHeaders === "object" ? a.requestHeaders : {}) as Record<string, string>;
  const body = readsBody
    ? bodyView(a.requestBody ? new Uint8Array(a.requestBody) : null, {
        contentType: headers["content-type"] ?? "",
        sqlService: actions.some((x) => typeof x.detail?.statement === "number"),
        actions,
        limit: options.fullBody ? null : undefined,
      })
    : withheldBody(a.bodySize);
  return {
    id: a.id,
    status: a.status,
    statusText: statusText(a.status, a.cancelReason),
    createdAt: a.createdAt.toISOString(),
    expiresAt: a.expiresAt.toISOString(),
    effect: approvalEffect(actions),
    task: {
      id: a.task.id,
      purpose: a.task.purpose,
      scope: a.task.scope,
      policyVersion: a.policyVersion,
      currentPolicyVersion: a.task.policyVersion,
      createdBy: await taskCreatorLabel(db, a.task.id, a.task.createdBy?.email ?? null),
      status: a.task.status,
    },
    agent: { id: a.agent.id, name: a.agent.name, owner: a.agent.owner?.email ?? null },
    actions: actions.map((x) => ({ ...x, line: plainLine(x) })),
    request: { method: a.method, url: a.url, ...parseUrl(a.url), headers, body: { ...body, size: a.bodySize || body.size } },
    reason: a.reason,
    required: a.requiredApprovals,
    votes: a.votes.map((v) => ({ by: v.user.email, note: v.note, at: v.createdAt.toISOString() })),
    decision: a.decidedAt || a.decidedBy ? { by: a.decidedBy?.email ?? null, at: a.decidedAt?.toISOString() ?? null, note: a.decisionNote } : null,
    fourEyes: a.status === "pending" ? await fourEyesNotice(db, actor, a.agent.ownerId, a.task.createdById) : null,
  };
}

/** The card's four-eyes sentence for this viewer (the rule itself is enforced in decide-approval.ts). */
async function fourEyesNotice(db: Db, actor: Actor, ownerId: string | null, creatorId: string | null): Promise<string | null> {
  const by = actor.kind === "user" ? actor.userId : actor.kind === "api_key" ? actor.createdById : null;
  if (!by || (by !== ownerId && by !== creatorId) || !(await isFourEyesOn(db))) return null;
  const role = by === ownerId && by === creatorId ? "the agent's owner and the task's creator" : by === ownerId ? "the agent's owner" : "the task's creator";
  return `Four-eyes is on and you are ${role}: your approval cannot release this request alone; another approver must approve it too. You can still deny it.`;
}

export const listApprovalsInput = z.object({
  state: z.enum(["pending", "approved", "denied", "expired", "consumed", "cancelled"]).optional(),
  task: z.uuid().optional(),
  agent: z.uuid().optional(),
  limit: limitParam(200, 50),
  /** `nextCursor` of the previous page (pending ones: oldest first; the others: newest first). */
  cursor: z.string().optional(),
});

/**
 * Approvals for lists and the API, newest first, filtered by state, task and agent, within the
 * actor's approver scope. Pending ones are listed per task in turn (round-robin by age), so one
 * task's flood of holds never pushes other tasks' requests off the page.
 */
export async function listApprovals(db: Db, actor: Actor, input: unknown) {
  return (await listApprovalsPage(db, actor, input)).items;
}

/**
 * The same, with the cursor of the next page, read a page at a time (keyset on creation time and
 * id, so pages never skip or repeat one while holds come and go): other states than pending newest
 * first; pending ones oldest first, the queue's order, each page listed a task at a time
 * (round-robin by age) so that one task's holds do not fill the top of the page. Pending ones were
 * one page, cut at `limit` without a word: past 200 waiting, the rest could not be seen or decided.
 */
export async function listApprovalsPage(db: Db, actor: Actor, input: unknown): Promise<ListPage<ApprovalSummary>> {
  assertCan(actor, "read");
  const f = listApprovalsInput.parse(input);
  const pending = f.state === "pending";
  const after = readTimeCursor(pending ? "pending approvals" : "approvals", f.cursor);
  const afterAt = after ? new Date(Number(after.atMs)) : null;
  const beyond = pending ? "gt" : "lt";
  const scope = await approverScope(db, actor);
  const rows = await db.approval.findMany({
    where: {
      ...scopeWhere(scope),
      ...(f.state ? { status: f.state } : {}),
      ...(f.task ? { taskId: f.task } : {}),
      ...(f.agent ? { agentId: f.agent } : {}),
      ...(after && afterAt ? { AND: [{ OR: [{ createdAt: { [beyond]: afterAt } }, { createdAt: afterAt, id: { [beyond]: after.id } }] }] } : {}),
    },
    orderBy: pending ? [{ createdAt: "asc" }, { id: "asc" }] : [{ createdAt: "desc" }, { id: "desc" }],
    take: f.limit + 1,
    select: {
      id: true, status: true, method: true, url: true, actions: true, createdAt: true, expiresAt: true, taskId: true, agentId: true, cancelReason: true, requiredApprovals: true,
      agent: { select: { name: true } }, task: { select: { purpose: true } }, decidedBy: { select: { email: true } }, _count: { select: { votes: true } },
    },
  });
  const shaped = rows.map((r) => ({
    id: r.id,
    status: r.status,
    statusText: statusText(r.status, r.cancelReason),
    method: r.method,
    url: r.url,
    effect: approvalEffect(r.actions),
    operations: (Array.isArray(r.actions) ? (r.actions as unknown as SemanticAction[]) : []).map((x) => ({ service: x.service, environment: x.environment, resource: x.resource, operation: x.operation, effect: x.effect })),
    createdAt: r.createdAt.toISOString(),
    expiresAt: r.expiresAt.toISOString(),
    taskId: r.taskId,
    agentId: r.agentId,
    agent: r.agent.name,
    purpose: r.task.purpose,
    approvals: r._count.votes,
    required: r.requiredApprovals,
    decidedBy: r.decidedBy?.email ?? null,
  }));
  const page = pageOf(shaped, f.limit, (r) => r, (r) => timeCursor(pending ? "pending approvals" : "approvals", { atMs: String(Date.parse(r.createdAt)), id: r.id }));
  return pending ? { ...page, items: roundRobin(page.items, (r) => r.taskId) } : page;
}

export type ApprovalSummary = {
  id: string;
  status: string;
  statusText: string | null;
  method: string;
  url: string;
  effect: ReturnType<typeof approvalEffect>;
  operations: Array<Pick<SemanticAction, "service" | "environment" | "resource" | "operation" | "effect">>;
  createdAt: string;
  expiresAt: string;
  taskId: string;
  agentId: string;
  agent: string;
  purpose: string;
  approvals: number;
  required: number;
  decidedBy: string | null;
};

/** Interleaves items by key, oldest first within each key. */
function roundRobin<T>(items: T[], key: (t: T) => string): T[] {
  const queues = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const q = queues.get(k);
    if (q) q.push(item);
    else queues.set(k, [item]);
  }
  const out: T[] = [];
  for (let round = 0; out.length < items.length; round++) for (const q of queues.values()) if (round < q.length) out.push(q[round]!);
  return out;
}

/** How many approvals wait for the actor (the nav badge). */
export async function countPendingApprovals(db: Db, actor: Actor, now = new Date()): Promise<number> {
  assertCan(actor, "read");
  const scope = await approverScope(db, actor);
  return db.approval.count({ where: { ...scopeWhere(scope), status: "pending", expiresAt: { gt: now } } });
}
