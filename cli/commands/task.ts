import { listTasks, type TaskView } from "@/lib/tasks/view";
import { parseFlags, requireFlag } from "../args";
import { CliError, type CommandHandler } from "../context";
import { agentIdOf, agentIdOfSql } from "../agent-ref";
import { readTextFile } from "../text-input";
import { usageLine } from "../help";
import { oneLine } from "../terminal-text";
import { CLI_ACTOR, withCliDatabase, withCliSql } from "../database";
import { pullSwitch } from "../already-done";

const toJson = (t: TaskView) => ({
  id: t.id,
  agentId: t.agent.id,
  agent: t.agent.name,
  purpose: t.purpose,
  scope: t.scope,
  status: t.status,
  createdAt: t.createdAt.toISOString(),
  expiresAt: t.expiresAt.toISOString(),
  endedAt: t.endedAt?.toISOString() ?? null,
});

export const taskCommand: CommandHandler = async (args, ctx) => {
  const [sub, ...rest] = args;
  switch (sub) {
    case "create": {
      const { values } = parseFlags(rest, { agent: { type: "string" }, purpose: { type: "string" }, scope: { type: "string" }, policy: { type: "string" }, ttl: { type: "string" } });
      const agentId = requireFlag(values.agent, "agent");
      const purpose = requireFlag(values.purpose, "purpose");
      let policyYaml: string | undefined;
      if (values.policy) {
        policyYaml = await readTextFile(values.policy, `--policy ${values.policy}`);
      }
      if (values.scope !== undefined && values.scope.trim() === "") throw new CliError('--scope is empty: give entries such as railway:staging:read, or "none"', 2);
      // Creating and ending load the policy parser and its classifiers; listing never does.
      const { createTask } = await import("@/lib/tasks/tasks");
      const task = await withCliDatabase(ctx, async (db) => createTask(db, CLI_ACTOR, { agentId: await agentIdOf(db, agentId), purpose, policyYaml, scope: values.scope, ttl: values.ttl }));
      ctx.stdout(ctx.json ? JSON.stringify(toJson(task)) : `Created task ${task.id} for ${task.agent.name}, scope ${task.scope || "none"}, expires ${task.expiresAt.toISOString()}.`);
      // Without --policy the task gets the empty deny-all policy: safe, but a first task made
      // this way refuses everything its agent asks, which exit 0 alone did not say.
      if (!values.policy && !ctx.json) {
        ctx.stderr(
          `No --policy given: the task's policy has no rules ("unlisted: deny"), so every request of ${task.agent.name} under it is denied. Give one with --policy FILE (bulkhead policy templates lists starting points), or edit it on the task's page.`,
        );
      }
      return 0;
    }
    case "list": {
      const { values } = parseFlags(rest, { agent: { type: "string" }, status: { type: "string" } });
      const tasks = await withCliSql(ctx, async (db) =>
        listTasks(db, CLI_ACTOR, { agentId: values.agent === undefined ? undefined : await agentIdOfSql(db, values.agent), status: values.status }),
      );
      if (ctx.json) ctx.stdout(JSON.stringify(tasks.map(toJson)));
      else if (tasks.length === 0) ctx.stdout("No tasks.");
      else for (const t of tasks) ctx.stdout(`${t.id}  ${t.status.padEnd(7)}  ${t.agent.name}  [${t.scope || "none"}]  ${oneLine(t.purpose)}`);
      return 0;
    }
    case "end": {
      const { positionals } = parseFlags(rest, {}, 1);
      const id = positionals[0];
      if (!id) throw new CliError("usage: bulkhead task end ID", 2);
      const { endTask } = await import("@/lib/tasks/tasks");
      const { value: task, unchanged } = await withCliDatabase(ctx, (db) => pullSwitch(endTask(db, CLI_ACTOR, id, "ended from the CLI")));
      if (ctx.json) ctx.stdout(JSON.stringify({ ...toJson(task), changed: unchanged === null, ...(unchanged ? { message: unchanged } : {}) }));
      else ctx.stdout(unchanged ?? `Task ${task.id} is ${task.status}.`);
      return 0;
    }
    default:
      throw new CliError(usageLine("task"), 2);
  }
};
