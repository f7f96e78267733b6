/**
 * Next.js calls this once when the dashboard's server starts: background work begins here.
 * Next.js also compiles this file for the edge runtime, where it never runs our work; the test is
 * written on `process.env.NEXT_RUNTIME` itself, which the build replaces with a constant, so the
 * edge build drops the imports below instead of warning about every Node.js module they reach
 * (it printed 18 "not supported in the Edge Runtime" warnings on a first `npm start`).
 */
export async function register(): Promise<void> {
  if (process.env.NEXT_RUNTIME === "nodejs") {
    const { startDashboardWebhooks } = await import("@/lib/webhooks/start");
    startDashboardWebhooks();
  }
}
