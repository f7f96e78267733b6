/**
 * `bulkhead policy check --task ID [FILE]`: a policy (FILE, or the task's stored one) next to the
 * task's scope, with a warning for every rule that lies outside it (those rules can never apply:
 * the proxy refuses such actions with `token_scope` before the policy is consulted).
 */
import { checkTaskScope } from "@/lib/tasks/scope";
import { parseFlags } from "../args";
import { CliError, type CliContext } from "../context";
import { readTextFile } from "../text-input";
import { CLI_ACTOR, withCliDatabase } from "../database";

export async function checkPolicyAgainstTask(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseFlags(args, { task: { type: "string" }, json: { type: "boolean" } }, 1);
  if (!values.task) throw new CliError("usage: bulkhead policy check --task ID [FILE]", 2);
  const taskId = values.task;
  const file = positionals[0];
  const policyYaml = file === undefined ? undefined : await readTextFile(file, file);
  const report = await withCliDatabase(ctx, (db) => checkTaskScope(db, CLI_ACTOR, taskId, { policyYaml }));
  const source = file ?? `task ${report.taskId} policy v${report.policyVersion}`;
  if (ctx.json || values.json === true) {
    ctx.stdout(JSON.stringify({ ok: report.policyErrors === null, source, ...report }));
  } else {
    ctx.stdout(`task ${report.taskId}: scope ${report.scopeText}`);
    for (const e of report.policyErrors ?? []) ctx.stderr(`${source}: ${e}`);
    for (const w of report.warnings) ctx.stderr(`${source}: warning: ${w.message}`);
    if (report.policyErrors === null && report.warnings.length === 0) ctx.stdout(`${source}: ok, every rule lies within the scope`);
  }
  // Warnings do not fail the check (the scope already refuses what they name); an invalid policy does.
  return report.policyErrors === null ? 0 : 1;
}
