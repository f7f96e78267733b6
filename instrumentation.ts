/** Next.js calls this once when the dashboard's server starts: background work begins here. */
export async function register(): Promise<void> {
  const { isNodeServerRuntime } = await import("@/lib/config/app");
  if (!isNodeServerRuntime()) return;
  const { startDashboardWebhooks } = await import("@/lib/webhooks/start");
  startDashboardWebhooks();
}
