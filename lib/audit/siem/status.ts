import { readFileSync } from "node:fs";
import path from "node:path";
import { loadCommonConfig } from "@/lib/config/common";
import type { SiemStatus } from "./shipper";

/** The launcher's last SIEM status (cli/runtime/siem.ts), or null when streaming is off or the file is unreadable. */
export function readSiemStatus(dataDir = loadCommonConfig().dataDir): (SiemStatus & { updatedAt: string }) | null {
  try {
    const parsed = JSON.parse(readFileSync(path.join(dataDir, "siem-status.json"), "utf8")) as SiemStatus & { updatedAt: string };
    return typeof parsed.cursorSeq === "string" && typeof parsed.target === "string" ? parsed : null;
  } catch {
    return null;
  }
}
