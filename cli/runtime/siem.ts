import { writeFile } from "node:fs/promises";
import path from "node:path";
import { startSiemShipper, type SiemShipper } from "@/lib/audit/siem/shipper";
import { httpTransport, syslogTcpTransport } from "@/lib/audit/siem/transport";
import { loadSiemConfig } from "@/lib/config/siem";
import { createPrismaClient } from "@/lib/db/client";

export const SIEM_STATUS_FILE = "siem-status.json";

/**
 * The SIEM shipper, run by the launcher when BULKHEAD_SIEM_URL is set, as the dashboard's role
 * (it only reads the audit). Its status (cursor, lag, last error) is written to
 * <data dir>/siem-status.json every few seconds for the dashboard's Audit page.
 */
export function startLauncherSiem(o: { dataDir: string; databaseUrl: string; say: (line: string) => void }): { stop(): Promise<void> } | null {
  const config = loadSiemConfig(o.dataDir);
  if (!config) return null;
  const db = createPrismaClient(o.databaseUrl, 1);
  const transport = config.kind === "http" ? httpTransport(config.url) : syslogTcpTransport(config.host, config.port);
  let lastError = "";
  const shipper: SiemShipper = startSiemShipper({
    db,
    transport,
    cursorFile: config.cursorFile,
    batchSize: config.batchSize,
    intervalMs: config.intervalMs,
    onError: (error) => {
      if (error.message !== lastError) o.say(`SIEM (${transport.description}): ${error.message}; events wait in the audit log and are retried.`);
      lastError = error.message;
    },
  });
  const statusFile = path.join(o.dataDir, SIEM_STATUS_FILE);
  const timer = setInterval(() => {
    void shipper
      .status()
      .then((s) => writeFile(statusFile, `${JSON.stringify({ ...s, updatedAt: new Date().toISOString() })}\n`, { mode: 0o600 }))
      .catch(() => undefined);
  }, 5000);
  timer.unref();
  o.say(`SIEM streaming: OCSF events to ${transport.description}, cursor ${config.cursorFile}`);
  return {
    async stop() {
      clearInterval(timer);
      await shipper.stop();
      await db.$disconnect();
    },
  };
}
