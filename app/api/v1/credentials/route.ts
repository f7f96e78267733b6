import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { addCredential, addCredentialInput, listCredentialsPage } from "@/lib/vault";
import { appKeys } from "@/lib/identity/app-keys";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

export const GET = apiRoute(
  "read",
  async ({ actor, request }) => {
    const url = new URL(request.url);
    const page = await listCredentialsPage(getDb(), actor, { cursor: url.searchParams.get("cursor") ?? undefined, limit: url.searchParams.get("limit") ?? undefined });
    return { credentials: page.items, nextCursor: page.nextCursor };
  },
  { query: { names: ["cursor", "limit"] } },
);

/** The secret arrives in this POST body only, and is never part of any response. */
export const POST = apiRoute(
  "credentials:write",
  async ({ actor, json }) => {
    const input = await json(addCredentialInput);
    const db = getDb();
    return { credential: await addCredential(db, actor, (await appKeys(db)).workerRecipient, input) };
  },
  { status: 201 },
);

export const { PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["GET", "POST"]);
