// A proxy worker's audit writer in its own process, under load: it acknowledges an event to the
// parent (over IPC) only after `record` resolved, i.e. once the event is durable in the log. The
// parent SIGKILLs it mid-load and checks that every acknowledged event survived.
import { requireRuntimeDatabaseUrl } from "@/lib/config/common";
import { createLogger } from "@/lib/log";
import { AuditWriter } from "@/proxy-worker/audit/writer";

const writer = await AuditWriter.start({
  databaseUrl: requireRuntimeDatabaseUrl("worker"),
  walDir: process.env.WAL_DIR!,
  workerId: process.env.WORKER_ID!,
  durability: process.env.DURABILITY === "strict" ? "strict" : "group",
  segmentBytes: 64 * 1024,
  maxBatch: 200,
  log: createLogger("writer-child", "silent"),
});
const IN_FLIGHT = 200;
let n = 0;

function one(): void {
  const i = n++;
  writer
    .record({ type: "proxy.decision", actorType: "agent", actorId: "child", outcome: "allow", reason: `load ${i}`, data: { i } })
    .then(
      (r) => process.send!({ ack: r.eventId, lsn: r.lsn, shipped: writer.stats().shippedLsn }),
      (e: unknown) => process.send!({ error: String(e) }),
    )
    .finally(one);
}

process.send!({ ready: true });
for (let k = 0; k < IN_FLIGHT; k++) one();
