/**
 * The folder sink: one file per checkpoint, `checkpoint-<number, 20 digits>.json`, created once
 * (hard-linked into place from a fully written and fsynced temporary file, so it is either absent
 * or whole, and an existing one is never replaced), read-only (0444), the folder fsynced after.
 *
 * Put the folder where the database cannot write: PostgreSQL's roles write files only as a
 * superuser or with pg_write_server_files, which no Bulkhead role has; for protection against the
 * host's own administrator, point BULKHEAD_AUDIT_CHECKPOINT_DIR at storage that is append-only for
 * Bulkhead's user (a WORM mount, `chattr +a`, a synced copy elsewhere).
 */
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { chmod, link, mkdir, open, readdir, readFile, unlink } from "node:fs/promises";
import path from "node:path";
import { syncDirectory } from "@/lib/files/secrets";
import { checkpointDocument, parseCheckpointDocument, type CheckpointSink, type CorruptPublication, type PublishedCheckpoint, type PublishedSet } from "./sink";

const NAME = /^checkpoint-(\d{20})\.json$/;
const TEMP = /^\.tmp-/;

export function checkpointFileName(number: bigint): string {
  return `checkpoint-${number.toString().padStart(20, "0")}.json`;
}

export class DirectoryCheckpointSink implements CheckpointSink {
  readonly description: string;

  constructor(readonly dir: string) {
    this.description = `folder ${dir}`;
  }

  async publish(checkpoint: PublishedCheckpoint["checkpoint"]): Promise<string> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const file = path.join(this.dir, checkpointFileName(checkpoint.chain.number));
    const tmp = path.join(this.dir, `.tmp-${process.pid}-${randomBytes(6).toString("hex")}`);
    const fh = await open(tmp, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o444);
    try {
      await fh.writeFile(`${JSON.stringify(checkpointDocument(checkpoint), null, 2)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      // link(2) fails with EEXIST instead of replacing: the folder is append-only for us too.
      await link(tmp, file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EEXIST") throw new Error(`${file} exists already: checkpoint ${checkpoint.chain.number} was published before; refusing to replace it`);
      throw error;
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
    await chmod(file, 0o444).catch(() => undefined);
    syncDirectory(this.dir);
    return file;
  }

  async readAll(): Promise<PublishedSet> {
    const out: PublishedSet = { checkpoints: [], corrupt: [] };
    for (const name of await this.names()) {
      const entry = await this.read(name);
      if ("checkpoint" in entry) out.checkpoints.push(entry);
      else out.corrupt.push(entry);
    }
    const num = (e: PublishedCheckpoint | CorruptPublication) => ("checkpoint" in e ? e.checkpoint.chain.number : (e.number ?? -1n));
    out.checkpoints.sort((a, b) => (num(a) < num(b) ? -1 : 1));
    out.corrupt.sort((a, b) => (num(a) < num(b) ? -1 : num(a) > num(b) ? 1 : 0));
    return out;
  }

  async latest(): Promise<PublishedCheckpoint | CorruptPublication | null> {
    const numbered = (await this.names()).filter((n) => NAME.test(n)).sort();
    const last = numbered[numbered.length - 1];
    return last === undefined ? null : this.read(last);
  }

  private async names(): Promise<string[]> {
    try {
      return (await readdir(this.dir)).filter((n) => !TEMP.test(n));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw error;
    }
  }

  private async read(name: string): Promise<PublishedCheckpoint | CorruptPublication> {
    const location = path.join(this.dir, name);
    const match = NAME.exec(name);
    if (!match) return { location, number: null, problem: "not a checkpoint file name" };
    const number = BigInt(match[1]!);
    let text: string;
    try {
      text = await readFile(location, "utf8");
    } catch (error) {
      return { location, number, problem: `unreadable: ${(error as Error).message}` };
    }
    const parsed = parseCheckpointDocument(text);
    if (typeof parsed === "string") return { location, number, problem: parsed };
    if (parsed.chain.number !== number) return { location, number, problem: `holds checkpoint ${parsed.chain.number}, not ${number}` };
    return { checkpoint: parsed, location };
  }
}
