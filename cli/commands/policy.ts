/**
 * `bulkhead policy …`: validate a policy file, explain what the proxy would do with a request,
 * print the JSON Schema or list templates.
 *
 * `check` and `explain` judge against the services and inventory stored in the database, as the
 * proxy does; `--offline` uses the built-in services and an empty inventory instead, plus the
 * `--services` and `--inventory` files when given.
 */
import { readFile } from "node:fs/promises";
import { z } from "zod";
import { flagErrorMessage, parseCommandArgs, parseFlags, type FlagOptions } from "../args";
import { CliError, type CliContext, type CommandHandler } from "../context";
import { fileErrorReason, readTextFile } from "../text-input";
import { usageLine } from "../help";
import { oneLine } from "../terminal-text";
import { explainRequest, type ExplainDecision } from "@/lib/policy/explain";
import { policyJsonSchema } from "@/lib/policy/json-schema";
import { parsePolicy, type PolicyError } from "@/lib/policy/parse";
import { policyTemplates } from "@/lib/policy/templates";
import type { PolicyContext } from "@/lib/policy/references";
import { emptyInventory, parseInventoryYaml } from "@/lib/semantics/inventory";
import { defaultRegistry, parseServicesYaml, registryWith } from "@/lib/semantics/registry";

const USAGE = usageLine("policy");

export const policyCommand: CommandHandler = async (args, ctx) => {
  const [sub, ...rest] = args;
  switch (sub) {
    case "check":
      return rest.some((a) => a === "--task" || a.startsWith("--task=")) ? (await import("./policy-scope")).checkPolicyAgainstTask(rest, ctx) : check(rest, ctx);
    case "explain":
      return explain(rest, ctx);
    case "schema":
      // It takes nothing: an unknown flag or an extra argument is refused, as everywhere.
      parseFlags(rest, {});
      ctx.stdout(JSON.stringify(policyJsonSchema(), null, 2));
      return 0;
    case "templates":
      return templates(rest, ctx);
    default:
      throw new CliError(sub === undefined ? USAGE : `unknown policy command "${sub}"\n${USAGE}`, 2);
  }
};

/**
 * Parses the flags, turning errors (unknown, repeated or empty flags, missing values) into usage
 * errors; a mistyped flag is answered with the nearest one, as every other command does.
 */
function usageErrors<O extends FlagOptions>(config: { args: string[]; options: O; allowPositionals: boolean }) {
  try {
    return parseCommandArgs<O>(config);
  } catch (error) {
    throw new CliError(`${flagErrorMessage(error, Object.keys(config.options))}\n${USAGE}`, 2);
  }
}

/** A file named by an argument, or by `--flag` (then errors name the flag too). */
function readText(file: string, flag?: string): Promise<string> {
  return readTextFile(file, flag ? `--${flag} ${file}` : file);
}

function printErrors(file: string, errors: readonly PolicyError[], ctx: CliContext): void {
  for (const e of errors) {
    const where = e.line !== undefined ? `${file}:${e.line}` : file;
    ctx.stderr(e.path ? `${where}: ${e.path}: ${e.message}` : `${where}: ${e.message}`);
  }
}

const CONTEXT_OPTIONS = {
  offline: { type: "boolean" },
  services: { type: "string" },
  inventory: { type: "string" },
} as const;

/**
 * The registry and inventory to judge against: the database's (what the proxy enforces with), or
 * with --offline the built-ins plus the given files.
 */
async function policyContext(values: { offline?: boolean | undefined; services?: string | undefined; inventory?: string | undefined }, ctx: CliContext): Promise<PolicyContext> {
  if (values.offline !== true) {
    if (values.services !== undefined || values.inventory !== undefined) {
      throw new CliError(`--services and --inventory are used with --offline; without it the database's services and inventory apply\n${USAGE}`, 2);
    }
    // Loaded only here: --offline, schema and templates load no database code.
    const [{ withCliDatabase }, { loadRegistry }] = await Promise.all([import("../database"), import("@/lib/services/registry-source")]);
    const built = await withCliDatabase(ctx, (db) => loadRegistry(db));
    for (const bad of built.problems.services) ctx.stderr(`warning: custom service ${bad.name} is invalid and left out: ${bad.errors.join("; ")}`);
    if (built.problems.conflict) ctx.stderr(`warning: custom services conflict, built-ins only: ${built.problems.conflict}`);
    if (built.problems.inventory) ctx.stderr(`warning: the stored inventory is invalid: ${built.problems.inventory.join("; ")}`);
    return { registry: built.registry, inventory: built.inventory };
  }
  let registry = defaultRegistry();
  if (values.services !== undefined) {
    const services = parseServicesYaml(await readText(values.services, "services"));
    if (!services.ok) throw new CliError(`${values.services}: ${services.errors.join("; ")}`);
    registry = registryWith(services.descriptors);
  }
  let inventory = emptyInventory;
  if (values.inventory !== undefined) {
    const parsed = parseInventoryYaml(await readText(values.inventory, "inventory"));
    if (!parsed.ok) throw new CliError(`${values.inventory}: ${parsed.errors.join("; ")}`);
    inventory = parsed.inventory;
  }
  return { registry, inventory };
}

async function check(args: string[], ctx: CliContext): Promise<number> {
  const { positionals, values } = usageErrors({ args, options: { json: { type: "boolean" }, ...CONTEXT_OPTIONS }, allowPositionals: true });
  if (positionals.length !== 1) throw new CliError(`policy check takes one FILE\n${USAGE}`, 2);
  const file = positionals[0] as string;
  const text = await readText(file);
  const result = parsePolicy(text, { references: await policyContext(values, ctx) });
  const json = ctx.json || values.json === true;
  if (!result.ok) {
    if (json) ctx.stdout(JSON.stringify({ ok: false, file, errors: result.errors }));
    else printErrors(file, result.errors, ctx);
    return 1;
  }
  const { mode, unlisted, rules } = result.policy;
  if (json) ctx.stdout(JSON.stringify({ ok: true, file, mode, unlisted, rules: rules.length }));
  else ctx.stdout(`${file}: ok (${rules.length} rule${rules.length === 1 ? "" : "s"}, mode ${mode}, unlisted ${unlisted})`);
  return 0;
}

function headersFrom(values: string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of values) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw new CliError(`--header must look like 'Name: value', got "${line}"`, 2);
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return headers;
}

async function explain(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = usageErrors({
      args,
      allowPositionals: true,
      options: {
        policy: { type: "string" },
        request: { type: "string" },
        body: { type: "string" },
        header: { type: "string", multiple: true },
        ...CONTEXT_OPTIONS,
        now: { type: "string" },
        json: { type: "boolean" },
      },
    });
  const policyFile = values.policy;
  const requestLine = values.request;
  if (typeof policyFile !== "string" || typeof requestLine !== "string" || positionals.length > 0) {
    throw new CliError(`policy explain needs --policy FILE and --request 'METHOD URL'\n${USAGE}`, 2);
  }
  const match = /^\s*(\S+)\s+(\S+)\s*$/.exec(requestLine);
  if (!match) throw new CliError(`--request must be 'METHOD URL', got "${requestLine}"`, 2);
  // A path alone ("GET /items") was explained as the proxy's refusal of it ("deny ... not_absolute",
  // exit 0), which reads as a policy decision; it is a mistake in the command.
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:/.test(match[2]!)) {
    throw new CliError(`--request's URL must be absolute, with its scheme and host, such as 'POST https://backboard.railway.com/graphql/v2', not "${oneLine(match[2]!.slice(0, 80))}"`, 2);
  }
  const headers = headersFrom(values.header ?? []);
  const bodyFile = values.body;
  const body =
    bodyFile === undefined
      ? undefined
      : await readFile(bodyFile).catch((error: unknown) => {
          throw new CliError(`cannot read --body ${bodyFile}: ${fileErrorReason(error)}`);
        });
  if (body !== undefined && headers["content-type"] === undefined) headers["content-type"] = "application/json";

  const now = values.now !== undefined ? instantOf(values.now) : Date.now();
  const policyYaml = await readText(policyFile, "policy");
  const { registry, inventory } = await policyContext(values, ctx);

  const result = await explainRequest({
    policyYaml,
    method: match[1] as string,
    url: match[2] as string,
    headers,
    ...(body !== undefined ? { body: new Uint8Array(body) } : {}),
    registry,
    inventory,
    now,
  });
  const json = ctx.json || values.json === true;
  if (!result.ok) {
    if (json) ctx.stdout(JSON.stringify({ ok: false, file: policyFile, errors: result.errors }));
    else printErrors(policyFile, result.errors, ctx);
    return 1;
  }
  if (json) ctx.stdout(JSON.stringify(result, null, 2));
  else printExplanation(result, ctx);
  return 0;
}

/**
 * --now as an ISO 8601 date-time with its zone. Date.parse alone took "5" for 1 May 2001, "Dec 5"
 * for 5 December 2001 and rolled 2026-02-30 over to 2 March: the policy was judged at a time
 * nobody meant, and a rule's expires_at with it.
 */
function instantOf(text: string): number {
  if (!z.iso.datetime({ offset: true }).safeParse(text).success) {
    throw new CliError(`--now must be an ISO 8601 date-time with its zone, such as 2026-12-05T09:30:00Z, not "${text.length > 40 ? `${text.slice(0, 40)}…` : text}"`, 2);
  }
  return Date.parse(text);
}

function printExplanation(r: ExplainDecision, ctx: CliContext): void {
  if (r.request) ctx.stdout(`request:  ${r.request.method} ${r.request.url}`);
  if (r.service) ctx.stdout(`service:  ${r.service}`);
  if (r.actions.length > 0) {
    ctx.stdout("actions:");
    for (const d of r.perAction) {
      const a = d.action;
      ctx.stdout(`  - ${a.effect} ${oneLine(a.operation)} on ${oneLine(a.environment)} ${oneLine(a.resource)} → ${d.decision}${d.ruleId ? ` (rule ${d.ruleId})` : ""}`);
    }
  }
  ctx.stdout(`decision: ${r.decision}${r.wouldBe !== undefined ? ` (report mode; would ${r.wouldBe})` : ""}`);
  ctx.stdout(`reason:   ${oneLine(r.reason)}`);
  ctx.stdout(`rule:     ${r.ruleId ?? "-"}`);
}

/** Lists the templates, or prints one's YAML (`policy templates read-only > policy.yaml`). */
function templates(args: string[], ctx: CliContext): number {
  const { positionals } = usageErrors({ args, options: {}, allowPositionals: true });
  if (positionals.length > 1) throw new CliError(`policy templates takes at most one template id\n${USAGE}`, 2);
  const id = positionals[0];
  if (id !== undefined) {
    const template = policyTemplates.find((t) => t.id === id);
    if (!template) throw new CliError(`no policy template "${id}"; the templates are ${policyTemplates.map((t) => t.id).join(", ")}`, 2);
    ctx.stdout(ctx.json ? JSON.stringify(template, null, 2) : template.yaml.replace(/\n$/, ""));
    return 0;
  }
  if (ctx.json) {
    ctx.stdout(JSON.stringify(policyTemplates, null, 2));
    return 0;
  }
  for (const t of policyTemplates) ctx.stdout(`${t.id.padEnd(20)} ${t.title}: ${t.description}`);
  ctx.stdout("");
  ctx.stdout("Print one as YAML to start a task's policy from: bulkhead policy templates ID > policy.yaml");
  return 0;
}
