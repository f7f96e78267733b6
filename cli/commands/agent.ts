import { listAgents, type AgentView } from "@/lib/agents/view";
import { parseFlags, requireFlag } from "../args";
import { CliError, type CommandHandler } from "../context";
import { agentIdOf } from "../agent-ref";
import { usageLine } from "../help";
import { CLI_ACTOR, withCliDatabase, withCliSql } from "../database";
import { pullSwitch } from "../already-done";
import { ownerFlagError } from "../errors";

const toJson = (a: AgentView) => ({
  id: a.id,
  name: a.name,
  description: a.description,
  status: a.status,
  owner: a.owner.email,
  createdAt: a.createdAt.toISOString(),
  suspendedAt: a.suspendedAt?.toISOString() ?? null,
});

const USAGE = usageLine("agent");

export const agentCommand: CommandHandler = async (args, ctx) => {
  const [sub, ...rest] = args;
  switch (sub) {
    case "create": {
      const { values } = parseFlags(rest, { name: { type: "string" }, owner: { type: "string" }, description: { type: "string" } });
      const name = requireFlag(values.name, "name");
      // Registering and suspending load Prisma and the audit writer; listing never does.
      const { createAgent } = await import("@/lib/agents/agents");
      const agent = await withCliDatabase(ctx, (db) =>
        createAgent(db, CLI_ACTOR, { name, ownerEmail: values.owner, description: values.description }).catch((error: unknown) => {
          throw ownerFlagError(error);
        }),
      );
      ctx.stdout(ctx.json ? JSON.stringify(toJson(agent)) : `Registered agent ${agent.name} (${agent.id}), owner ${agent.owner.email}.`);
      return 0;
    }
    case "list": {
      const { values } = parseFlags(rest, { query: { type: "string" }, status: { type: "string" } });
      // Passed as given: a status that is not one is refused by listAgents, never read as "every agent".
      const status = values.status as "active" | "suspended" | undefined;
      const agents = await withCliSql(ctx, (db) => listAgents(db, CLI_ACTOR, { query: values.query, status }));
      if (ctx.json) ctx.stdout(JSON.stringify(agents.map(toJson)));
      else if (agents.length === 0) ctx.stdout("No agents.");
      else for (const a of agents) ctx.stdout(`${a.id}  ${a.status.padEnd(9)}  ${a.name}  (${a.owner.email})`);
      return 0;
    }
    case "suspend":
    case "reactivate": {
      const { positionals } = parseFlags(rest, {}, 1);
      const id = positionals[0];
      if (!id) throw new CliError(`usage: bulkhead agent ${sub} ID|NAME`, 2);
      const { setAgentSuspended } = await import("@/lib/agents/agents");
      const { value: agent, unchanged } = await withCliDatabase(ctx, async (db) => pullSwitch(setAgentSuspended(db, CLI_ACTOR, await agentIdOf(db, id), sub === "suspend")));
      if (ctx.json) ctx.stdout(JSON.stringify({ ...toJson(agent), changed: unchanged === null, ...(unchanged ? { message: unchanged } : {}) }));
      else ctx.stdout(unchanged ? `Agent ${agent.name}: ${unchanged}` : `Agent ${agent.name} is now ${agent.status}.`);
      return 0;
    }
    default:
      throw new CliError(USAGE, 2);
  }
};
