import { access, constants, lstat, stat, unlink } from "node:fs/promises";
import path from "node:path";
import { CliError } from "./context";
import { writeErrorText } from "./output";

/**
 * Refuses an --output a command could not write (its folder missing or not writable, or a folder
 * itself) before the command does its work, and without touching an existing file.
 */
export async function assertWritableOutput(file: string): Promise<void> {
  const folder = path.dirname(path.resolve(file));
  const existing = await stat(file).catch(() => null);
  if (existing?.isDirectory()) throw new CliError(`cannot write --output ${file}: it is a folder`, 2);
  const folderStat = await stat(folder).catch(() => null);
  if (!folderStat?.isDirectory()) throw new CliError(`cannot write --output ${file}: the folder ${folder} does not exist`, 2);
  try {
    await access(existing ? file : folder, constants.W_OK);
  } catch {
    throw new CliError(`cannot write --output ${file}: permission denied`, 2);
  }
}

/**
 * A file a command could not write whole (a full disk, an I/O error): the error names the file and
 * the reason, and what was written of it is removed (a regular file only: never a device or a
 * pipe given as --output), so an incomplete export or report is never taken for a whole one later.
 */
export async function writeFailure(files: string[], error: unknown, what: string): Promise<CliError> {
  const removed: string[] = [];
  for (const file of files) {
    const st = await lstat(file).catch(() => null);
    if (st?.isFile() && (await unlink(file).then(() => true, () => false))) removed.push(file);
  }
  const cleaned = removed.length === 0 ? "" : `; the incomplete ${removed.length === 1 ? "file was" : "files were"} removed`;
  return new CliError(`could not write ${what}: ${writeErrorText(error)}${cleaned}`);
}
