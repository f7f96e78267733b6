import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { finished } from "node:stream/promises";
import { startAuditExport } from "@/lib/audit/export";
import { OUTCOME_EXAMPLES } from "@/lib/audit/search";
import { parseFlags } from "../args";
import { CliError, type CliContext } from "../context";
import { CLI_ACTOR, withCliDatabase } from "../database";
import { outputFailure, outputGone, writable } from "../output";
import { assertWritableOutput, writeFailure } from "../output-file";
import { terminalText } from "../terminal-text";

const MULTI = ["type", "outcome", "effect", "service", "environment"] as const;
const FILTER_FLAGS = ["from", "to", "agent", "task", "user", "q", ...MULTI] as const;

/**
 * `bulkhead audit export`: the same export as the dashboard's, to a file or standard output,
 * written as fast as the destination takes it (a full pipe pauses the database cursor).
 * Recorded as an export by the CLI (`audit.export_started`, `audit.exported`).
 */
export async function exportCommand(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parseFlags(args, {
    format: { type: "string" },
    output: { type: "string", short: "o" },
    from: { type: "string" },
    to: { type: "string" },
    agent: { type: "string" },
    task: { type: "string" },
    user: { type: "string" },
    q: { type: "string" },
    ...Object.fromEntries(MULTI.map((k) => [k, { type: "string", multiple: true }])),
  } as const);
  const input = {
    format: values.format,
    from: values.from,
    to: values.to,
    agent: values.agent,
    task: values.task,
    user: values.user,
    q: values.q,
    ...Object.fromEntries(MULTI.map((k) => [k, (values as Record<string, string[] | undefined>)[k]])),
  };
  // The destination is checked before the export starts (without touching an existing file, so
  // refused input never truncates it): a folder that does not exist or cannot be written is one
  // line naming it, not an unhandled stream error and a stack trace.
  if (values.output) await assertWritableOutput(values.output);
  const summary = await withCliDatabase(ctx, async (db) => {
    const exp = await startAuditExport(db, CLI_ACTOR, input, { via: "cli" });
    const toFile = values.output ? createWriteStream(values.output, { mode: 0o600 }) : undefined;
    // An error opening or writing the file (a full disk) ends the export with that error, never
    // as an unhandled 'error' event.
    let failed = null as Error | null;
    toFile?.on("error", (error) => (failed = error));
    if (toFile) await once(toFile, "open");
    const out = toFile ?? ctx.stdoutStream ?? process.stdout;
    // An export read on a terminal shows agent-chosen text: its control characters are shown, not
    // obeyed. To a file or a pipe it is written exactly.
    const show = !values.output && (out as { isTTY?: boolean }).isTTY === true ? terminalText : (chunk: string) => chunk;
    let bytes = 0;
    // Standard output closed by its reader (`| head`), or failing (a full disk where it was
    // redirected): the export stops, and says it is incomplete and why.
    const closed = () => {
      const failure = outputFailure(out);
      if (failure) return new CliError(`standard output could not be written after ${bytes} bytes: ${failure}; the export is incomplete`);
      return new CliError(`standard output was closed by its reader after ${bytes} bytes; the export is incomplete (use --output FILE for the whole log)`);
    };
    try {
      for await (const chunk of exp.chunks) {
        if (failed) break;
        if (!toFile && outputGone(out)) throw closed();
        if (!out.write(show(chunk))) await writable(out);
        bytes += Buffer.byteLength(chunk);
      }
      if (!toFile && outputGone(out)) throw closed();
    } finally {
      if (toFile) {
        toFile.end();
        await finished(toFile).catch((error: Error) => (failed ??= error));
      }
    }
    // The file could not be written whole (a full disk): named, with the reason, and removed.
    if (failed && values.output) throw await writeFailure([values.output], failed, `--output ${values.output} (after ${bytes} bytes of the export)`);
    return { format: exp.format, throughSeq: exp.throughSeq, bytes, rows: exp.rows(), nothing: exp.nothing, unmatchedTypes: exp.unmatchedTypes, unmatchedOutcomes: exp.unmatchedOutcomes };
  });
  const where = values.output ?? "standard output";
  const events = `${summary.rows} ${summary.rows === 1 ? "event" : "events"}`;
  ctx.stderr(`Exported the audit log as ${summary.format} (events up to seq ${summary.throughSeq}, ${summary.bytes} bytes) to ${where}: ${events}.`);
  // An empty export is often a filter value that never occurs (an outcome is "deny", not "denied"):
  // said, so that an empty file is not read as "nothing happened".
  // A name no agent has, an email no user has: said as such (the filter could never match).
  // Event types and outcomes are open-ended, so --type and --outcome are never refused; one that
  // no event in the log has is said, whether or not the other values matched.
  for (const sentence of summary.unmatchedTypes) ctx.stderr(`--type: ${sentence}.`);
  for (const sentence of summary.unmatchedOutcomes) ctx.stderr(`--outcome: ${sentence}.`);
  const noneOf = (sentences: string[]) => sentences.length > 0 && summary.nothing === sentences.join("; ");
  if (summary.rows === 0 && noneOf(summary.unmatchedTypes)) {
    ctx.stderr("No event matched the filters: no event in the log has any of the --type values given.");
  } else if (summary.rows === 0 && noneOf(summary.unmatchedOutcomes)) {
    ctx.stderr("No event matched the filters: no event in the log has any of the --outcome values given.");
  } else if (summary.rows === 0 && summary.nothing) {
    const named = summary.nothing.includes("agent") ? `--agent ${values.agent}` : `--user ${values.user}`;
    ctx.stderr(`No event matched the filters: ${summary.nothing} (${named}; bulkhead agent list and bulkhead user list show them).`);
  } else if (summary.rows === 0 && FILTER_FLAGS.some((k) => (values as Record<string, unknown>)[k] !== undefined)) {
    ctx.stderr(`No event matched the filters. Values are matched exactly: outcomes are words such as ${OUTCOME_EXAMPLES}; types look like proxy.decision or proxy.* (bulkhead help audit).`);
  }
  return 0;
}
