import { open, type FileHandle } from "node:fs/promises";
import { isStorableText, UNSTORABLE_TEXT_MESSAGE } from "@/lib/audit/sanitise";
import { CliError } from "./context";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/*
 * Text an operator hands the CLI in a file or on stdin (a policy, an inventory, a descriptor, a
 * secret, a password) is checked as the API checks a request body: valid UTF-8 (not silently
 * mended with U+FFFD, which would store something other than what was written) and nothing
 * PostgreSQL cannot store (NUL, a lone UTF-16 half), refused with a line that names the input
 * instead of failing in the database with the driver's message.
 */

/** Bytes as UTF-8 text, refused when they are not UTF-8; `what` names the input ("standard input", "--policy p.yaml"). */
export function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new CliError(`${what} is not valid UTF-8 text`, 2);
  }
}

/** Refuses text PostgreSQL cannot store; returns it unchanged otherwise. */
export function storableInput(text: string, what: string): string {
  if (!isStorableText(text)) throw new CliError(`${what} ${UNSTORABLE_TEXT_MESSAGE}`, 2);
  return text;
}

/**
 * The most text the CLI reads from one file or from standard input: every input it takes (a
 * policy, at most 1 MB; an inventory; a descriptor; a secret) is far smaller. Read as it comes and
 * refused past it: `--policy /dev/zero` grew the command to 6.8 GB before anything was checked.
 */
export const MAX_TEXT_INPUT_BYTES = 16 * 1024 * 1024;

function tooLarge(what: string): CliError {
  return new CliError(`${what} is larger than ${MAX_TEXT_INPUT_BYTES / (1024 * 1024)} MiB; nothing was read`, 2);
}

/** All of a stream's bytes, refused (CliError) past MAX_TEXT_INPUT_BYTES without reading on. */
export async function readBounded(stream: AsyncIterable<Buffer | string>, what: string, onTooLarge?: () => void): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    size += bytes.length;
    if (size > MAX_TEXT_INPUT_BYTES) {
      onTooLarge?.();
      throw tooLarge(what);
    }
    chunks.push(bytes);
  }
  return Buffer.concat(chunks, size);
}

/** A text file named by a flag or an argument (`what`, e.g. "--policy policy.yaml"), read and checked. */
export async function readTextFile(file: string, what: string): Promise<string> {
  let bytes: Buffer;
  let handle: FileHandle | null = null;
  try {
    handle = await open(file, "r");
    const info = await handle.stat();
    if (info.isDirectory()) throw Object.assign(new Error("is a folder"), { code: "EISDIR" });
    if (info.isFile() && info.size > MAX_TEXT_INPUT_BYTES) throw tooLarge(what);
    const stream = handle.createReadStream({ autoClose: false });
    bytes = await readBounded(stream, what, () => stream.destroy());
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(`cannot read ${what}: ${fileErrorReason(error)}`);
  } finally {
    await handle?.close().catch(() => undefined);
  }
  return storableInput(decodeUtf8(bytes, what), what);
}

const FILE_ERRORS: Record<string, string> = { ENOENT: "no such file", EISDIR: "it is a folder", EACCES: "permission denied", ENOTDIR: "a part of the path is not a folder" };

/** Why a file could not be read, as the error code and what it means ("ENOENT (no such file)"). */
export function fileErrorReason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (!code) return "error";
  return FILE_ERRORS[code] ? `${code} (${FILE_ERRORS[code]})` : code;
}
