import type { Db } from "@/lib/db/client";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { requireStepUp } from "@/lib/auth/step-up";
import { recordAuditEvent } from "@/lib/audit/record";
import { AppError } from "@/lib/errors/app-error";
import { loadRegistry } from "@/lib/services/registry-source";
import { endpointService, environmentList } from "./binding";
import { bindCredentialInput, credentialIdSchema, type BindCredentialInput } from "./schemas";
import { credentialSelect, toCredentialView, type CredentialView } from "./view";

/**
 * Declares what a stored credential serves: its service (the one its host belongs to) and the
 * environments. This is how a credential from before bindings existed (which serves nothing) is
 * put back to use, and how an admin narrows or moves one; the secret is untouched. Audited with
 * the binding before and after.
 */
export async function bindCredential(db: Db, actor: Actor, id: string, input: BindCredentialInput): Promise<CredentialView> {
  assertCan(actor, "credentials:write");
  // Rebinding decides where a secret is injected (a staging credential made to serve every
  // environment): a recent sign-in, as adding, rotating and deleting one need.
  const stepUp = requireStepUp(actor, "rebind a vault credential");
  const data = bindCredentialInput.parse(input);
  const parsedId = credentialIdSchema.safeParse(id);
  if (!parsedId.success) throw new AppError("NOT_FOUND", "No such credential.");
  const { registry } = await loadRegistry(db);
  return db.$transaction(async (tx) => {
    const [locked] = await tx.$queryRaw<Array<{ id: string }>>`SELECT id FROM credentials WHERE id = ${parsedId.data}::uuid FOR UPDATE`;
    const row = locked ? await tx.credential.findUnique({ where: { id: parsedId.data }, select: credentialSelect }) : null;
    if (!row) throw new AppError("NOT_FOUND", "No such credential.");
    const scheme = row.scheme === "http" ? "http" : "https";
    const endpoint = endpointService(registry, scheme, row.host, row.port, data.serviceId);
    if (!endpoint.ok) throw new AppError("INVALID_INPUT", endpoint.message, { details: { fieldErrors: { serviceId: [endpoint.message] } } });
    const updated = await tx.credential.update({ where: { id: row.id }, data: { serviceId: endpoint.serviceId, environments: data.environments }, select: credentialSelect });
    const view = toCredentialView(updated);
    await recordAuditEvent(tx, {
      type: "credential.bound",
      actor,
      data: {
        credentialId: view.id,
        name: view.name,
        service: view.service,
        before: { serviceId: row.serviceId, environments: environmentList(row.environments) },
        after: { serviceId: view.serviceId, environments: view.environments },
        stepUp,
      },
    });
    return view;
  });
}
