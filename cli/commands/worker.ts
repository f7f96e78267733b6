import { loadCommonConfig, requireRuntimeDatabaseUrl, RUNTIME_DATABASE_URL_VARIABLE } from "@/lib/config/common";
import { assertRuntimeRole } from "@/lib/db/roles/check";
import { runWorker } from "@/proxy-worker/main";
import { CliError, type CommandHandler } from "../context";

/**
 * Runs the proxy worker in this process until SIGINT/SIGTERM/SIGHUP or the parent goes away. It refuses
 * a database role that could switch off the audit's protections (a superuser, an owner), unless
 * the operator opted out of separate roles with BULKHEAD_DATABASE_SINGLE_ROLE.
 */
export const workerCommand: CommandHandler = async (args) => {
  if (args.length > 0) throw new CliError(`unexpected argument "${args[0]}": bulkhead worker takes none (settings are environment variables; bulkhead help worker)`, 2);
  if (!loadCommonConfig().singleDatabaseRole) {
    await assertRuntimeRole(requireRuntimeDatabaseUrl("worker"), RUNTIME_DATABASE_URL_VARIABLE.worker);
  }
  const stop = await runWorker();
  // Tells the launcher (cli/runtime/supervise.ts) that this worker started: a later exit is a crash.
  process.send?.({ type: "ready" });
  // `on`, not `once`: a SIGTERM sent to the whole process group (systemd's default stop, `timeout`,
  // `kill -TERM -<pgid>`) reaches the worker and then the launcher's own SIGTERM reaches it again;
  // with the handler gone, the default action killed it before stop() removed its nftables fence
  // and gateway addresses from the host. Later signals are ignored while it stops; the launcher's
  // stop timeout still ends a worker that hangs.
  await new Promise<void>((resolve) => {
    const done = () => resolve();
    process.on("SIGINT", done);
    process.on("SIGTERM", done);
    process.on("SIGHUP", done); // its terminal closed
    process.once("disconnect", done); // the launcher died: do not linger as an orphan
  });
  await stop();
  return 0;
};
