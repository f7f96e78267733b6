import type { Db } from "@/lib/db/client";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { requireStepUp } from "@/lib/auth/step-up";
import { recordAuditEvent } from "@/lib/audit/record";
import { AppError } from "@/lib/errors/app-error";
import { credentialIdSchema } from "./schemas";
import { credentialSelect, toCredentialView, type CredentialView } from "./view";

/** Deletes a credential; workers stop injecting it at their next reload (sent at commit). */
export async function deleteCredential(db: Db, actor: Actor, id: string): Promise<CredentialView> {
  assertCan(actor, "credentials:write");
  const parsedId = credentialIdSchema.safeParse(id);
  if (!parsedId.success) throw new AppError("NOT_FOUND", "No such credential.");
  const stepUp = requireStepUp(actor, "delete a vault credential");
  return db.$transaction(async (tx) => {
    const [locked] = await tx.$queryRaw<Array<{ id: string }>>`SELECT id FROM credentials WHERE id = ${parsedId.data}::uuid FOR UPDATE`;
    const row = locked ? await tx.credential.findUnique({ where: { id: parsedId.data }, select: credentialSelect }) : null;
    if (!row) throw new AppError("NOT_FOUND", "No such credential.");
    await tx.credential.delete({ where: { id: row.id } });
    const view = toCredentialView(row);
    await recordAuditEvent(tx, { type: "credential.deleted", actor, data: { credentialId: view.id, name: view.name, service: view.service, stepUp } });
    return view;
  });
}
