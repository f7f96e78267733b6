import type { Db } from "@/lib/db/client";
import { roleCan } from "@/lib/auth/roles";
import { scopeWhere, type ApproverScope } from "./approver-scope";

/** A vote that no longer counts, and why. */
export type WithdrawnVote = {
  userId: string;
  reason: "disabled" | "removed" | "no_longer_an_approver" | "outside_approver_scope" | "api_key_revoked";
};

/**
 * Splits an approval's recorded votes into those that still count and those that do not, as
 * the database says at this instant (call it inside the deciding transaction, after the
 * approval's row lock). A vote counts only while its voter still exists, is not disabled, has a
 * role that may decide approvals, and has an approver scope that still covers this approval: a
 * person disabled, demoted or narrowed after voting must not help release a request. A vote cast
 * through an API key counts only while the key is not revoked (revoking it normally cancels the
 * approval outright, `cancelApprovalsVotedThrough`; this covers a key revoked by any other
 * route). An expired key's vote still counts: expiry is not a finding against it. The vote
 * rows stay as they were (approval_votes is insert-only for the dashboard); a vote that does not
 * count is named in the decision's audit event as withdrawn.
 */
export async function countedVotes(
  tx: Pick<Db, "user" | "approval" | "apiKey">,
  approvalId: string,
  votes: ReadonlyArray<{ userId: string; apiKeyId: string | null }>,
): Promise<{ counted: string[]; withdrawn: WithdrawnVote[] }> {
  if (votes.length === 0) return { counted: [], withdrawn: [] };
  const users = await tx.user.findMany({
    where: { id: { in: votes.map((v) => v.userId) } },
    select: { id: true, role: true, disabledAt: true, approverScopes: { select: { kind: true, value: true } } },
  });
  const keyIds = votes.flatMap((v) => (v.apiKeyId ? [v.apiKeyId] : []));
  const revokedKeys = new Set(
    keyIds.length === 0 ? [] : (await tx.apiKey.findMany({ where: { id: { in: keyIds }, revokedAt: { not: null } }, select: { id: true } })).map((k) => k.id),
  );
  const byId = new Map(users.map((u) => [u.id, u]));
  const counted: string[] = [];
  const withdrawn: WithdrawnVote[] = [];
  for (const { userId, apiKeyId } of votes) {
    const user = byId.get(userId);
    if (apiKeyId && revokedKeys.has(apiKeyId)) withdrawn.push({ userId, reason: "api_key_revoked" });
    else if (!user) withdrawn.push({ userId, reason: "removed" });
    else if (user.disabledAt) withdrawn.push({ userId, reason: "disabled" });
    else if (!roleCan(user.role, "approvals:decide")) withdrawn.push({ userId, reason: "no_longer_an_approver" });
    else if (!(await inScope(tx, approvalId, user.approverScopes))) withdrawn.push({ userId, reason: "outside_approver_scope" });
    else counted.push(userId);
  }
  return { counted, withdrawn };
}

async function inScope(tx: Pick<Db, "approval">, approvalId: string, rows: Array<{ kind: string; value: string }>): Promise<boolean> {
  if (rows.length === 0) return true;
  const scope: ApproverScope = { agents: rows.filter((r) => r.kind === "agent").map((r) => r.value), services: rows.filter((r) => r.kind === "service").map((r) => r.value) };
  return (await tx.approval.count({ where: { id: approvalId, ...scopeWhere(scope) } })) === 1;
}
