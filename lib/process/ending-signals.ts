import { constants as osConstants } from "node:os";

/** Signals that end a command: SIGINT (Ctrl-C), SIGTERM (`timeout`, a supervisor), SIGHUP (a closed terminal). */
export const ENDING_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
export type EndingSignal = (typeof ENDING_SIGNALS)[number];

/** How long the cleanups may take before the process exits anyway. */
const CLEANUP_TIMEOUT_MS = 30_000;

type Cleanup = (signal: EndingSignal) => Promise<void>;
const cleanups: Cleanup[] = [];
let ending: EndingSignal | null = null;

const handlers = Object.fromEntries(
  ENDING_SIGNALS.map((signal) => [
    signal,
    () => {
      // A command that handles the signal itself (`sandbox run` ends its sandbox first) ends its
      // own way, through its `finally` blocks, which undo what was registered here.
      if (ending || process.listenerCount(signal) > 1) return;
      ending = signal;
      void endOn(signal);
    },
  ]),
) as Record<EndingSignal, () => void>;

/**
 * What a signal must not leave behind (an embedded PostgreSQL a command started, a replay's
 * network namespaces): `cleanup` runs if SIGINT, SIGTERM or SIGHUP ends the process before the
 * returned function is called. Left to the signals' default action, the process died on the spot
 * and left them running with nobody to stop them. Cleanups run newest first, one at a time; then
 * the process exits with 128 + the signal's number, as a shell reports a signal. While nothing is
 * registered the signals keep their default action.
 */
export function cleanUpOnSignal(cleanup: Cleanup): () => void {
  if (cleanups.length === 0 && !ending) for (const signal of ENDING_SIGNALS) process.on(signal, handlers[signal]);
  cleanups.push(cleanup);
  return () => {
    const i = cleanups.indexOf(cleanup);
    if (i >= 0) cleanups.splice(i, 1);
    if (cleanups.length === 0 && !ending) for (const signal of ENDING_SIGNALS) process.off(signal, handlers[signal]);
  };
}

/** The signal the process is ending on, once one came (null before). */
export function endingSignal(): EndingSignal | null {
  return ending;
}

async function endOn(signal: EndingSignal): Promise<void> {
  const code = 128 + osConstants.signals[signal];
  // Cleaning up closes connections and processes under the command, which may fail on that (an
  // idle client's error, a query cut short) or end first: neither may end the process before the
  // cleanups are done, nor change its exit code.
  process.on("uncaughtException", () => undefined);
  process.on("exit", () => (process.exitCode = code));
  setTimeout(() => process.exit(code), CLEANUP_TIMEOUT_MS).unref();
  for (const cleanup of [...cleanups].reverse()) await cleanup(signal).catch(() => undefined);
  process.exit(code);
}
