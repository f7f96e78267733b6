import { randomBytes } from "node:crypto";
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from "node:fs";
import path from "node:path";

/**
 * Reads a generated secret from the data folder, creating it (owner-only) on first use. Used in
 * local mode for values an operator may also set explicitly in the environment.
 */
export function readOrCreateSecretFile(dataDir: string, name: string, bytes = 32): { value: string; created: boolean } {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = path.join(dataDir, name);
  if (existsSync(file)) return { value: readFileSync(file, "utf8").trim(), created: false };
  const value = randomBytes(bytes).toString("base64url");
  writeFileSync(file, `${value}\n`, { mode: 0o600, flag: "wx" });
  return { value, created: true };
}

/** fsync a directory, so a rename or a new entry in it survives a crash. */
export function syncDirectory(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes an owner-only secret file so that after a crash it either does not exist or holds the
 * whole value: a temporary file is written and fsynced, then renamed into place (and the folder
 * fsynced). Refuses to replace an existing file.
 */
export function writeSecretFileDurably(file: string, text: string): void {
  const dir = path.dirname(file);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (existsSync(file)) throw new Error(`${file} already exists; refusing to replace it`);
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, "wx", 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  syncDirectory(dir);
}

/** Atomically replaces `to` with `from` (same folder) and makes the change durable. */
export function replaceFileDurably(from: string, to: string): void {
  renameSync(from, to);
  syncDirectory(path.dirname(to));
}
