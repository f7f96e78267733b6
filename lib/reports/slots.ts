/**
 * How many task reports a dashboard process builds at once. A report verifies the audit chain
 * over the task's whole range and draws a PDF: seconds of PostgreSQL and CPU for a busy task
 * (docs/benchmarks.md, "Per-task reports"), holding a database connection throughout. Without a
 * bound, any reader requesting many reports at once would take the connection pool and the CPU
 * from everyone; beyond the bound the request is refused (429) and can be retried.
 */
import { AppError } from "@/lib/errors/app-error";

export const MAX_CONCURRENT_REPORTS = 2;

// On globalThis: Next.js bundles the pages and the route that build reports separately, each
// with its own copy of this module, in one process (as lib/reports/cache.ts).
const shared = globalThis as typeof globalThis & { bulkheadReportsBuilding?: { count: number } };
const building = (shared.bulkheadReportsBuilding ??= { count: 0 });

/** Reports being built in this process now. */
export function reportsBuilding(): number {
  return building.count;
}

/** Runs `build` in one of the slots, or throws RATE_LIMITED (429, retry after 10 s) when none is free. */
export async function withReportSlot<T>(build: () => Promise<T>): Promise<T> {
  if (building.count >= MAX_CONCURRENT_REPORTS) {
    throw new AppError("RATE_LIMITED", `${building.count} task reports are being built`, {
      userMessage: `${MAX_CONCURRENT_REPORTS} task reports are being built right now; try again in a few seconds.`,
      details: { retryAfterSeconds: 10 },
    });
  }
  building.count++;
  try {
    return await build();
  } finally {
    building.count--;
  }
}
