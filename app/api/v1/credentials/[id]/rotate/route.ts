import { loadAppConfig } from "@/lib/config/app";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { rotateCredential, rotateCredentialInput } from "@/lib/vault";
import { appKeys } from "@/lib/identity/app-keys";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

/** The new secret arrives in this POST body only, and is never part of any response. */
export const POST = apiRoute<{ id: string }>("credentials:write", async ({ actor, params, json }) => {
  const { secret } = await json(rotateCredentialInput);
  const db = getDb();
  return { credential: await rotateCredential(db, actor, (await appKeys(db)).workerRecipient, params.id, secret, loadAppConfig().retiredSecrets) };
});

export const { GET, HEAD, PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["POST"]);
