/**
 * Writing and reading archive files. An archive is written to a temporary file, fsynced, renamed
 * into place and the folder fsynced, so it is either absent or whole; the manifest likewise, after
 * it. `verifyArchiveFile` reads a file back line by line (constant memory).
 */
import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, openSync } from "node:fs";
import { mkdir, open, readFile, rename, unlink, type FileHandle } from "node:fs/promises";
import { createReadStream } from "node:fs";
import path from "node:path";
import type { CheckpointKey } from "../checkpoints";
import { manifestFileName, type ArchiveManifest, type ArchiveVerification } from "./archive-format";
import { parseManifest } from "./archive-parse";
import { ArchiveVerifier } from "./archive-verifier";

function syncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes `file` atomically: `write` fills a temporary file, which is fsynced and renamed into place. */
export async function writeFileAtomically(file: string, write: (fh: FileHandle) => Promise<void>): Promise<void> {
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = path.join(dir, `.tmp-${process.pid}-${randomBytes(6).toString("hex")}`);
  const fh = await open(tmp, "wx", 0o440);
  try {
    try {
      await write(fh);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (error) {
    await unlink(tmp).catch(() => undefined);
    throw error;
  }
  syncDir(dir);
}

/** Reads the manifest beside `archiveFile` (or `manifestFile`); a string saying what is wrong otherwise. */
export async function readManifest(archiveFile: string, manifestFile = manifestFileName(archiveFile)): Promise<ArchiveManifest | string> {
  let text: string;
  try {
    text = await readFile(manifestFile, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return `there is no manifest at ${manifestFile} (an archive is written with its manifest beside it; --manifest FILE names another)`;
    return `the manifest ${manifestFile} cannot be read: ${code === "EACCES" ? "permission denied" : code === "EISDIR" ? "it is a directory" : (error as Error).message}`;
  }
  return parseManifest(text);
}

/** Re-verifies an archive offline: its manifest's digest and signature, its hash chain and its checkpoints' signatures. */
export async function verifyArchiveFile(archiveFile: string, keys: readonly CheckpointKey[] | null, manifestFile?: string): Promise<ArchiveVerification & { manifest: ArchiveManifest | null }> {
  const manifest = await readManifest(archiveFile, manifestFile);
  const verifier = new ArchiveVerifier(keys);
  try {
    for await (const chunk of createReadStream(archiveFile)) verifier.update(chunk as Buffer);
  } catch (error) {
    const problems = [`the archive ${archiveFile} cannot be read: ${(error as Error).message}`];
    return { ok: false, problems, header: null, events: 0, checkpoints: 0, signaturesChecked: keys !== null, manifestSigned: false, unsignedParts: [], manifest: null };
  }
  const result = verifier.finish(typeof manifest === "string" ? null : manifest);
  if (typeof manifest === "string") result.problems.unshift(manifest);
  // A file with no archive header at all is most likely not an archive (an export, a report, a
  // manifest given as the archive): said first, in one sentence, before the details.
  if (result.header === null) result.problems.unshift(`${archiveFile} is not a Bulkhead audit archive: it does not start with an archive header (archives are the files bulkhead audit archive writes, with a .manifest.json beside each)`);
  return { ...result, ok: result.ok && typeof manifest !== "string", manifest: typeof manifest === "string" ? null : manifest };
}
