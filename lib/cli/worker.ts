import { runWorker } from "@/proxy-worker/main";
import type { CommandHandler } from "./context";

/** Runs the proxy worker in this process until SIGINT/SIGTERM or the parent goes away. */
export const workerCommand: CommandHandler = async () => {
  const stop = await runWorker();
  // Tells the launcher (lib/cli/supervise.ts) that this worker started: a later exit is a crash.
  process.send?.({ type: "ready" });
  await new Promise<void>((resolve) => {
    const done = () => resolve();
    process.once("SIGINT", done);
    process.once("SIGTERM", done);
    process.once("disconnect", done); // the launcher died: do not linger as an orphan
  });
  await stop();
  return 0;
};
