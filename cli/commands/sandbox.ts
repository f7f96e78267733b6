/**
 * `bulkhead sandbox …`. Listing and stopping are data (a row; the launcher watching it tears the
 * namespace down), so they load neither the isolation code nor, for `list`, Prisma; `run`,
 * `verify` and `cleanup` load the launcher (./sandbox-run.ts) when they run.
 */
import { describeLimits, isRecordedLimits } from "@/lib/sandboxes/limits";
import { listSandboxes, type SandboxView } from "@/lib/sandboxes/view";
import { parseFlags } from "../args";
import { CliError, type CommandHandler } from "../context";
import { usageLine } from "../help";
import { CLI_ACTOR, withCliDatabase, withCliSql } from "../database";

export const SANDBOX_USAGE = usageLine("sandbox");

const toJson = (s: SandboxView) => ({
  id: s.id,
  name: s.name,
  kind: s.kind,
  taskId: s.taskId,
  agent: s.task.agent.name,
  addresses: s.addresses,
  live: s.removedAt === null,
  blockedAttempts: s.blockedAttempts,
  createdAt: s.createdAt.toISOString(),
  removedAt: s.removedAt?.toISOString() ?? null,
  removedReason: s.removedReason,
  limits: s.limits ?? null,
});

/** "home 1 GiB, scratch 512 MiB each, memory 4 GiB, 1024 processes (cgroup v1)", or "" when not recorded. */
export const limitsLine = (s: Pick<SandboxView, "limits">) => (isRecordedLimits(s.limits) ? `${describeLimits(s.limits)} (${s.limits.enforcedBy === "off" ? "memory and process limits off" : s.limits.enforcedBy})` : "");

export const sandboxCommand: CommandHandler = async (args, ctx) => {
  const [sub, ...rest] = args;
  switch (sub) {
    case "run":
      return (await import("./sandbox-run")).runCommand(rest, ctx);
    case "verify":
      return (await import("./sandbox-run")).verifyCommand(rest, ctx);
    case "cleanup":
      return (await import("./sandbox-run")).cleanupCommand(rest, ctx);
    case "list": {
      const { values } = parseFlags(rest, { all: { type: "boolean" } });
      const rows = await withCliSql(ctx, (db) => listSandboxes(db, CLI_ACTOR, { live: !values.all }));
      if (ctx.json) ctx.stdout(JSON.stringify(rows.map(toJson)));
      else if (rows.length === 0) ctx.stdout(values.all ? "No sandboxes." : "No live sandboxes.");
      else for (const s of rows) ctx.stdout(`${s.id}  ${s.removedAt ? "removed" : "live   "}  ${s.kind.padEnd(8)}  ${s.addresses.padEnd(32)}  ${s.task.agent.name}  task ${s.taskId}  blocked ${s.blockedAttempts}${limitsLine(s) ? `  limits: ${limitsLine(s)}` : ""}`);
      return 0;
    }
    case "stop": {
      const { positionals } = parseFlags(rest, {}, 1);
      const id = positionals[0];
      if (!id) throw new CliError("usage: bulkhead sandbox stop ID", 2);
      const { stopSandbox } = await import("@/lib/sandboxes/sandboxes");
      const row = await withCliDatabase(ctx, (db) => stopSandbox(db, CLI_ACTOR, id, "stopped from the CLI"));
      ctx.stdout(ctx.json ? JSON.stringify(toJson(row)) : `Sandbox ${row.name} stopped; its launcher tears it down.`);
      return 0;
    }
    default:
      throw new CliError(SANDBOX_USAGE, 2);
  }
};
