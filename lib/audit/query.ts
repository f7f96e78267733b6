import { z } from "zod";
import type { Db } from "@/lib/db/client";
import { assertCan, type Actor } from "@/lib/auth/actor";

export const auditFilter = z.object({
  type: z.string().trim().max(100).optional(),
  agentId: z.uuid().optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(200),
});

export async function listAuditEvents(db: Db, actor: Actor, input: z.input<typeof auditFilter> = {}) {
  assertCan(actor, "read");
  const f = auditFilter.parse(input);
  return db.auditEvent.findMany({
    where: { ...(f.type ? { type: { startsWith: f.type } } : {}), ...(f.agentId ? { agentId: f.agentId } : {}) },
    orderBy: { id: "desc" },
    take: f.limit,
  });
}
