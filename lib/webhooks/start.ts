import { loadAppConfig } from "@/lib/config/app";
import { getDb } from "@/lib/db/client";
import { appKeys } from "@/lib/identity/app-keys";
import type { Actor } from "@/lib/auth/actor";
import { startWebhookDispatcher } from "./dispatcher";
import { listWebhooks } from "./webhooks";

const SYSTEM_READER: Actor = { kind: "system", label: "webhook check at start" };

let stop: (() => void) | null = null;

/**
 * Starts the approval webhook sender in the dashboard process (once). The dashboard sends them
 * because it alone holds their secrets and the worker's request path must never wait on, or
 * even know of, a receiver; the queue is written by a database trigger, so holds the worker
 * creates are sent too, and nothing is lost across restarts.
 */
export function startDashboardWebhooks(): void {
  if (stop) return;
  const db = getDb();
  const config = loadAppConfig();
  stop = startWebhookDispatcher(
    db,
    async () => ({ dashboardKey: (await appKeys(db)).dashboardKey, publicUrl: config.publicUrl, retryBaseMs: config.webhooks.retryBaseMs, maxAttempts: config.webhooks.maxAttempts, network: config.webhooks }),
    (message) => console.error(message),
  );
  // A webhook saved before its destination was refused (a private receiver an earlier version
  // accepted, or the allowed networks narrowed since) is said at start, not only in its deliveries.
  void listWebhooks(db, SYSTEM_READER, config.webhooks)
    .then((hooks) => {
      for (const w of hooks) if (w.enabled && w.refused) console.error(`[bulkhead] Webhook ${JSON.stringify(w.name)} (${w.host}) will not be delivered: ${w.refused}`);
    })
    .catch(() => undefined);
}
