import type { Db } from "@/lib/db/client";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { loadRegistry } from "@/lib/services/registry-source";
import { endpointService } from "./binding";
import { credentialSelect, toCredentialView, type CredentialView } from "./view";

export interface ListedCredential extends CredentialView {
  /** Why the proxy will never inject it as it stands (unbound, or its host now belongs to another service); null when it can. */
  problem: string | null;
}

/** Metadata of every credential, for anyone with `read`. The sealed secret is never selected. */
export async function listCredentials(db: Db, actor: Actor): Promise<ListedCredential[]> {
  assertCan(actor, "read");
  const rows = await db.credential.findMany({ select: credentialSelect, orderBy: { name: "asc" }, take: 1000 });
  const { registry } = await loadRegistry(db);
  return rows.map((row) => {
    const view = toCredentialView(row);
    return { ...view, problem: bindingProblem(view, registry) };
  });
}

function bindingProblem(view: CredentialView, registry: Parameters<typeof endpointService>[0]): string | null {
  if (view.serviceId === null || view.environments.length === 0) return "unbound: it serves nothing and is never injected until its service and environments are declared";
  const endpoint = endpointService(registry, view.scheme === "http" ? "http" : "https", view.host, view.port, undefined);
  if (!endpoint.ok) return endpoint.message;
  if (endpoint.serviceId !== view.serviceId) return `its host now belongs to the service ${endpoint.serviceId}, not ${view.serviceId}: it is never injected until it is bound again`;
  return null;
}
