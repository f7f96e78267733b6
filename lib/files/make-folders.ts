import { existsSync, mkdirSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";

/** The folders of `dir`'s path that do not exist yet, outermost first. */
function missingFolders(dir: string): string[] {
  const missing: string[] = [];
  let current = path.resolve(dir);
  while (!existsSync(current)) {
    missing.unshift(current);
    const parent = path.dirname(current);
    if (parent === current) break;
    current = parent;
  }
  return missing;
}

/**
 * `mkdir -p`, one level at a time. Node's own `{ recursive: true }` never returns for a path in a
 * file system that refuses new folders without saying so the usual way (under /proc it loops);
 * here each level fails with its own error (ENOENT, EACCES, ENOTDIR...), which callers turn into
 * a sentence.
 */
export function makeFoldersSync(dir: string, mode = 0o700): void {
  for (const folder of missingFolders(dir)) {
    try {
      mkdirSync(folder, { mode });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
  }
}

export async function makeFolders(dir: string, mode = 0o700): Promise<void> {
  for (const folder of missingFolders(dir)) {
    try {
      await mkdir(folder, { mode });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
  }
}
