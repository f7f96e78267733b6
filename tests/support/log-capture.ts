import pino from "pino";
import type { Logger } from "@/lib/log";

export interface CapturedLog {
  log: Logger;
  /** Every line the logger wrote, exactly as written (one JSON object per line). */
  lines: () => string[];
  /** The parsed lines whose message is `msg`. */
  entries: (msg: string) => Array<Record<string, unknown>>;
}

/** A worker logger that keeps its output in memory, split on newlines only (as a log shipper would). */
export function captureLog(level = "info"): CapturedLog {
  let text = "";
  const sink = { write: (chunk: string) => void (text += chunk) };
  const log = pino({ name: "proxy-test", level, base: { service: "proxy-test" } }, sink);
  const lines = () => text.split("\n").filter((l) => l !== "");
  return {
    log,
    lines,
    entries: (msg) => lines().map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.msg === msg),
  };
}

/** Polls `check` until it returns a truthy value (or throws after `timeoutMs`). */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs = 10_000, what = "condition"): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
