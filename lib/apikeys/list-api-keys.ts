import type { Db } from "@/lib/db/client";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { apiKeySelect, toApiKeyView, type ApiKeyView } from "./view";

/** Every API key, newest first, for admins (`users:read`). Never the hash. */
export async function listApiKeys(db: Db, actor: Actor): Promise<ApiKeyView[]> {
  assertCan(actor, "users:read");
  const rows = await db.apiKey.findMany({ select: apiKeySelect, orderBy: { createdAt: "desc" }, take: 500 });
  const now = new Date();
  return rows.map((r) => toApiKeyView(r, now));
}
