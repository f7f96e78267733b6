import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { addCredential, addCredentialInput, listCredentials } from "@/lib/vault";
import { dashboardMasterKey } from "@/lib/vault/app-master-key";

export const GET = apiRoute("read", async ({ actor }) => ({ credentials: await listCredentials(getDb(), actor) }));

/** The secret arrives in this POST body only, and is never part of any response. */
export const POST = apiRoute(
  "credentials:write",
  async ({ actor, json }) => {
    const input = await json(addCredentialInput);
    const db = getDb();
    return { credential: await addCredential(db, actor, await dashboardMasterKey(db), input) };
  },
  { status: 201 },
);
