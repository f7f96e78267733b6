import type { Db } from "@/lib/db/client";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { credentialSelect, toCredentialView, type CredentialView } from "./view";

/** Metadata of every credential, for anyone with `read`. The sealed secret is never selected. */
export async function listCredentials(db: Db, actor: Actor): Promise<CredentialView[]> {
  assertCan(actor, "read");
  const rows = await db.credential.findMany({ select: credentialSelect, orderBy: { name: "asc" }, take: 1000 });
  return rows.map(toCredentialView);
}
