import type { Db } from "@/lib/db/client";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { everyPage, pageOf, readLimit, readTimeCursor, timeCursor, type ListPage, type PageRequest } from "@/lib/db/list-page";
import { apiKeySelect, toApiKeyView, type ApiKeyView } from "./view";

/**
 * One page of API keys, newest first (ties of creation time by id), for admins (`users:read`):
 * at most `limit` (default 500) and the cursor of the next page. Never the hash.
 */
export async function listApiKeysPage(db: Db, actor: Actor, page: PageRequest = {}): Promise<ListPage<ApiKeyView>> {
  assertCan(actor, "users:read");
  const after = readTimeCursor("api-keys", page.cursor);
  const limit = readLimit(page.limit);
  const at = after ? new Date(Number(after.atMs)) : null;
  const rows = await db.apiKey.findMany({
    select: apiKeySelect,
    where: at && after ? { OR: [{ createdAt: { lt: at } }, { createdAt: at, id: { lt: after.id } }] } : {},
    orderBy: [{ createdAt: "desc" }, { id: "desc" }],
    take: limit + 1,
  });
  const now = new Date();
  return pageOf(rows, limit, (r) => toApiKeyView(r, now), (r) => timeCursor("api-keys", { atMs: String(r.createdAt.getTime()), id: r.id }));
}

/** Every API key, newest first (page after page). */
export async function listApiKeys(db: Db, actor: Actor): Promise<ApiKeyView[]> {
  return everyPage((cursor) => listApiKeysPage(db, actor, { cursor }));
}
