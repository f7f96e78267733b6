import { loadAppConfig } from "@/lib/config/app";
import { getDb } from "@/lib/db/client";
import { appKeys } from "@/lib/identity/app-keys";
import { startWebhookDispatcher } from "./dispatcher";

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
}
