import type { Db } from "@/lib/db/client";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { requireStepUp } from "@/lib/auth/step-up";
import { recordAuditEvent } from "@/lib/audit/record";
import { AppError } from "@/lib/errors/app-error";
import { credentialIdSchema } from "./schemas";
import { RETIRED_SECRETS_DEFAULTS, type RetiredSecretsConfig } from "@/lib/config/retired-secrets";
import { retireSecret } from "./retired-secrets";
import { credentialSelect, toCredentialView, type CredentialView } from "./view";

/**
 * Deletes a credential; workers stop injecting it at their next reload (sent at commit). Its secret
 * is kept as retired (retired-secrets.ts) in the same transaction: workers still redact it from
 * its service's answers within `retired`'s bounds, since the upstream's logs still hold it and it
 * may be valid there until revoked.
 */
export async function deleteCredential(db: Db, actor: Actor, id: string, retired: RetiredSecretsConfig = RETIRED_SECRETS_DEFAULTS): Promise<CredentialView> {
  assertCan(actor, "credentials:write");
  const parsedId = credentialIdSchema.safeParse(id);
  if (!parsedId.success) throw new AppError("NOT_FOUND", "No such credential.");
  const stepUp = requireStepUp(actor, "delete a vault credential");
  return db.$transaction(async (tx) => {
    const [locked] = await tx.$queryRaw<Array<{ id: string; secret_sealed: string }>>`SELECT id, secret_sealed FROM credentials WHERE id = ${parsedId.data}::uuid FOR UPDATE`;
    const row = locked ? await tx.credential.findUnique({ where: { id: parsedId.data }, select: credentialSelect }) : null;
    if (!locked || !row) throw new AppError("NOT_FOUND", "No such credential.");
    // Read only to be moved (this process cannot open it).
    await retireSecret(tx, { ...row, secretSealed: locked.secret_sealed }, "deleted", retired);
    await tx.credential.delete({ where: { id: row.id } });
    const view = toCredentialView(row);
    await recordAuditEvent(tx, { type: "credential.deleted", actor, data: { credentialId: view.id, name: view.name, service: view.service, stepUp } });
    return view;
  });
}
