import { loadAppConfig } from "@/lib/config/app";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { deleteCredential } from "@/lib/vault";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

export const DELETE = apiRoute<{ id: string }>("credentials:write", async ({ actor, params }) => ({
  credential: await deleteCredential(getDb(), actor, params.id, loadAppConfig().retiredSecrets),
}));

export const { GET, HEAD, POST, PUT, PATCH, OPTIONS } = methodsNotAllowed(["DELETE"]);
