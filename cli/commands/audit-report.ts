import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { loadCommonConfig } from "@/lib/config/common";
import { MASTER_KEY_FILE, resolveMasterKey } from "@/lib/identity/master-key";
import { deriveProcessKeys } from "@/lib/keys/process-keys";
import { checkpointVerificationKey } from "@/lib/audit/checkpoints";
import { readRetiredCheckpointKeys, readRetiredReportKeys } from "@/lib/keys/retired-checkpoint-keys";
import { generateTaskReport } from "@/lib/reports/generate";
import { reportVerificationKey, verifyReport, type ReportKey } from "@/lib/reports/signature";
import { parseFlags } from "../args";
import { CliError, type CliContext } from "../context";
import { CLI_ACTOR, withCliKeys } from "../database";
import { assertWritableOutput, writeFailure } from "../output-file";

/** `bulkhead audit report TASK_ID [--output FILE.pdf]`: the signed PDF and FILE.pdf.sig beside it. */
export async function reportCommand(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseFlags(args, { output: { type: "string" } }, 1);
  const taskId = positionals[0];
  if (!taskId || positionals.length > 1) throw new CliError("usage: bulkhead audit report TASK_ID [--output FILE.pdf]", 2);
  // Before the report is generated (and audited as generated): a path it cannot be written to.
  if (values.output) await assertWritableOutput(values.output);
  const generated = await withCliKeys(ctx, (db, keys) => {
    const checkpointKeys = [checkpointVerificationKey(keys.checkpointKey), ...readRetiredCheckpointKeys(loadCommonConfig().dataDir)];
    return generateTaskReport(db, CLI_ACTOR, taskId, { checkpointKeys, reportKey: keys.reportKey, via: "cli" });
  });
  const file = values.output ?? generated.filename;
  try {
    await writeFile(file, generated.pdf, { mode: 0o600 });
    await writeFile(`${file}.sig`, `${JSON.stringify(generated.signature, null, 2)}\n`, { mode: 0o600 });
  } catch (error) {
    // A report without its signature (or half a PDF) is not left to be taken for a whole one.
    throw await writeFailure([file, `${file}.sig`], error, `the report ${file}`);
  }
  if (ctx.json) ctx.stdout(JSON.stringify({ pdf: file, signature: `${file}.sig`, sha256: generated.signature.sha256, keyId: generated.signature.keyId }));
  else ctx.stdout(`Report written to ${file} (${generated.pdf.length} bytes) with its signature ${file}.sig (key ${generated.signature.keyId}).`);
  return 0;
}

const KEY = /^brk_[0-9a-f]{16}:[A-Za-z0-9_-]{43}$/;

/** Keys from --keys (the JSON at /.well-known/bulkhead-audit-keys.json). */
async function keysFromFile(file: string): Promise<ReportKey[]> {
  let doc: { keys?: Array<{ keyId?: unknown; publicKey?: unknown; use?: unknown }> };
  if (!existsSync(file)) throw new CliError(`--keys ${file} does not exist (save /.well-known/bulkhead-audit-keys.json to it)`, 2);
  try {
    doc = JSON.parse(await readFile(file, "utf8")) as typeof doc;
  } catch {
    throw new CliError(`--keys ${file} is not the JSON of /.well-known/bulkhead-audit-keys.json`, 2);
  }
  // `report` and `report-retired` (the report keys of master keys rotated away).
  return (doc.keys ?? [])
    .filter((k) => (k.use === "report" || k.use === "report-retired") && typeof k.keyId === "string" && typeof k.publicKey === "string")
    .map((k) => ({ keyId: k.keyId as string, publicKey: k.publicKey as string }));
}

/**
 * `bulkhead audit verify-report FILE.pdf [--signature FILE.sig] [--key brk_…:PUBLIC_KEY]... [--keys KEYS.json]`:
 * offline. Trusts --key, --keys, and (where the master key is at hand) this installation's report key.
 */
export async function verifyReportCommand(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseFlags(args, { signature: { type: "string" }, key: { type: "string", multiple: true }, keys: { type: "string" } }, 1);
  const file = positionals[0];
  if (!file || positionals.length > 1) throw new CliError("usage: bulkhead audit verify-report FILE.pdf [--signature FILE.sig] [--key KEY_ID:PUBLIC_KEY]... [--keys KEYS.json]", 2);
  const sigFile = values.signature ?? `${file}.sig`;
  if (!existsSync(file)) throw new CliError(`${file} does not exist`, 2);
  if (!existsSync(sigFile)) throw new CliError(`${sigFile} does not exist: pass the detached signature with --signature`, 2);
  const keys: ReportKey[] = (values.key ?? []).map((k) => {
    if (!KEY.test(k)) throw new CliError("--key must be KEY_ID:PUBLIC_KEY (brk_…) as /.well-known/bulkhead-audit-keys.json lists it", 2);
    const [keyId, publicKey] = k.split(":") as [string, string];
    return { keyId, publicKey };
  });
  if (values.keys) keys.push(...(await keysFromFile(values.keys)));
  const local = localReportKey();
  if (local) keys.push(local);
  keys.push(...retiredReportKeys());
  const result = verifyReport(await readFile(file), await readFile(sigFile, "utf8"), keys);
  if (ctx.json) ctx.stdout(JSON.stringify(result));
  else if (result.ok) ctx.stdout(`Report OK: ${file} is the report of task ${result.taskId} generated ${result.generatedAt}, signed by ${result.keyId}.`);
  else ctx.stdout(`Report NOT VERIFIED: ${result.problem}.`);
  return result.ok ? 0 : 1;
}

/** Report keys of this installation's master keys rotated away (none outside its data folder). */
function retiredReportKeys(): ReportKey[] {
  try {
    return readRetiredReportKeys(loadCommonConfig().dataDir);
  } catch {
    return [];
  }
}

/** This installation's report key, when the master key is configured or in the data folder (never created here). */
function localReportKey(): ReportKey | null {
  const config = loadCommonConfig();
  if (!config.masterKey && !existsSync(path.join(config.dataDir, MASTER_KEY_FILE))) return null;
  try {
    return reportVerificationKey(deriveProcessKeys(resolveMasterKey(config.masterKey, config.dataDir).key).reportKey);
  } catch {
    return null;
  }
}
