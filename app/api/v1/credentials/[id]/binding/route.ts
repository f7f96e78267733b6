import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { bindCredential, bindCredentialInput } from "@/lib/vault";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

/** Declares what a credential serves (service and environments); the secret is untouched. */
export const POST = apiRoute<{ id: string }>("credentials:write", async ({ actor, params, json }) => ({
  credential: await bindCredential(getDb(), actor, params.id, await json(bindCredentialInput)),
}));

export const { GET, HEAD, PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["POST"]);
