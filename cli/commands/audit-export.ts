import { createWriteStream } from "node:fs";
import { once } from "node:events";
import { startAuditExport } from "@/lib/audit/export";
import { parseFlags } from "../args";
import type { CliContext } from "../context";
import { CLI_ACTOR, withCliDatabase } from "../database";
import { terminalText } from "../terminal-text";

const MULTI = ["type", "outcome", "effect", "service", "environment"] as const;

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
  const summary = await withCliDatabase(ctx, async (db) => {
    const exp = await startAuditExport(db, CLI_ACTOR, input, { via: "cli" });
    const out = values.output ? createWriteStream(values.output, { mode: 0o600 }) : (ctx.stdoutStream ?? process.stdout);
    // An export read on a terminal shows agent-chosen text: its control characters are shown, not
    // obeyed. To a file or a pipe it is written exactly.
    const show = !values.output && (out as { isTTY?: boolean }).isTTY === true ? terminalText : (chunk: string) => chunk;
    let bytes = 0;
    try {
      for await (const chunk of exp.chunks) {
        bytes += Buffer.byteLength(chunk);
        if (!out.write(show(chunk))) await once(out, "drain");
      }
    } finally {
      if (values.output) {
        out.end();
        await once(out, "finish");
      }
    }
    return { format: exp.format, throughSeq: exp.throughSeq, bytes };
  });
  const where = values.output ?? "standard output";
  ctx.stderr(`Exported the audit log as ${summary.format} (events up to seq ${summary.throughSeq}, ${summary.bytes} bytes) to ${where}.`);
  return 0;
}
