import { access, constants, stat } from "node:fs/promises";
import path from "node:path";
import { CliError } from "./context";

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
