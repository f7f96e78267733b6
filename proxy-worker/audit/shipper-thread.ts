/**
 * The audit shipper's thread (started by shipper-host.ts): an AuditShipper over a mirror of the
 * main thread's log (wal/mirror.ts), with its own connection to PostgreSQL. Its statistics, log
 * lines and the cursor it reaches go back to the main thread as messages.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { Logger } from "@/lib/log";
import { AuditShipper } from "./shipper";
import type { FromShipperThread, LogLevel, ShipperThreadData, ToShipperThread } from "./shipper-host";
import { WalMirror } from "./wal/mirror";

const port = parentPort;
if (!port) throw new Error("shipper-thread.ts runs as a worker thread of the proxy worker");
const data = workerData as ShipperThreadData;
const send = (m: FromShipperThread) => port.postMessage(m);

/** The shipper's log lines, written by the main thread's logger. */
function logLine(level: LogLevel) {
  return (obj: unknown, msg?: string) => {
    const fields = typeof obj === "object" && obj !== null ? { ...(obj as Record<string, unknown>) } : {};
    for (const [k, v] of Object.entries(fields)) if (v instanceof Error) fields[k] = v.message;
    send({ t: "log", level, obj: fields, msg: msg ?? (typeof obj === "string" ? obj : "") });
  };
}
const log = { debug: logLine("debug"), info: logLine("info"), warn: logLine("warn"), error: logLine("error") } as unknown as Logger;

const mirror = new WalMirror(data.state, data.memoryBytes, {
  release: (lsn) => send({ t: "release", lsn }),
  advancePast: (lsn) => send({ t: "advancePast", lsn }),
});
const shipper = new AuditShipper(mirror, {
  ...data.options,
  dedupe: data.dedupe,
  log,
  onBatch: (events, seconds) => send({ t: "batch", events, seconds }),
  onProgress: () => send({ t: "stats", stats: shipper.stats() }),
});

port.on("message", (m: ToShipperThread) => {
  switch (m.t) {
    case "log":
      if (m.frames) mirror.written(m.first, Buffer.from(m.frames.buffer, m.frames.byteOffset, m.frames.byteLength));
      if (m.durable) mirror.durableThrough(m.durable.lsn, m.durable.segments);
      return;
    case "drain":
      void shipper.drain(m.ms).then(
        (ok) => {
          send({ t: "stats", stats: shipper.stats() });
          send({ t: "drained", id: m.id, ok });
        },
        () => send({ t: "drained", id: m.id, ok: false }),
      );
      return;
    case "stop":
      void (async () => {
        await shipper.stop();
        await mirror.close();
        send({ t: "stats", stats: shipper.stats() });
        send({ t: "stopped" });
        port.close();
      })();
      return;
  }
});

shipper.start();
