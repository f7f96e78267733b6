import { startSiemShipper, type SiemShipper } from "@/lib/audit/siem/shipper";
import { publishSiemStatus } from "@/lib/audit/siem/status";
import { httpTransport, syslogTcpTransport } from "@/lib/audit/siem/transport";
import { loadSiemConfig } from "@/lib/config/siem";
import { createPrismaClient } from "@/lib/db/client";

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
  const stopStatus = publishSiemStatus(shipper, o.dataDir);
  o.say(`SIEM streaming: OCSF events to ${transport.description}, cursor ${config.cursorFile}`);
  return {
    async stop() {
      await shipper.stop();
      await stopStatus();
      await db.$disconnect();
    },
  };
}
