import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { loadCommonConfig } from "@/lib/config/common";
import type { SiemShipper, SiemStatus } from "./shipper";

export const SIEM_STATUS_FILE = "siem-status.json";

/** The launcher's last SIEM status (cli/runtime/siem.ts), or null when streaming is off or the file is unreadable. */
export function readSiemStatus(dataDir = loadCommonConfig().dataDir): (SiemStatus & { updatedAt: string }) | null {
  try {
    const parsed = JSON.parse(readFileSync(path.join(dataDir, SIEM_STATUS_FILE), "utf8")) as SiemStatus & { updatedAt: string };
    return typeof parsed.cursorSeq === "string" && typeof parsed.target === "string" ? parsed : null;
  } catch {
    return null;
  }
}

/**
 * Writes the shipper's status to <data dir>/siem-status.json now and every `intervalMs`, for the
 * Audit page and the worker's metrics (which read the last error and how fresh the file is).
 * Returns the function that stops it; call it after stopping the shipper, so the last status
 * written says "stopped" rather than leaving the last "idle" to look current.
 */
export function publishSiemStatus(shipper: SiemShipper, dataDir: string, intervalMs = 5000): () => Promise<void> {
  const file = path.join(dataDir, SIEM_STATUS_FILE);
  const write = () =>
    shipper
      .status()
      .then((s) => writeFile(file, `${JSON.stringify({ ...s, updatedAt: new Date().toISOString() })}\n`, { mode: 0o600 }))
      .catch(() => undefined);
  void write();
  const timer = setInterval(() => void write(), intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await write();
  };
}
