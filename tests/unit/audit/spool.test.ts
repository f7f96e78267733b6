import { fork } from "node:child_process";
import { appendFile, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AuditSpoolLockedError } from "@/proxy-worker/audit/errors";
import { prepareEvent } from "@/proxy-worker/audit/event";
import { AuditSpool } from "@/proxy-worker/audit/spool";

const row = (i: number) => prepareEvent({ type: `t.${i}`, actorType: "system", data: { i } }, new Date(1_800_000_000_000 + i));

describe("the audit spool", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "bh-spool-"));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("appends JSON lines to numbered segments, rotates at the size limit, and reads them back in order", async () => {
    const spool = await AuditSpool.open(dir, "w1", 2000);
    const rows = Array.from({ length: 30 }, (_, i) => row(i));
    for (let i = 0; i < rows.length; i += 3) await spool.append(rows.slice(i, i + 3));
    expect(spool.syncs).toBe(10);
    const segments = await spool.segments();
    expect(segments.length).toBeGreaterThan(1);
    expect(path.basename(segments[0]!.file)).toBe("w1.00000001.jsonl");
    // The active segment is not offered for replay until it is sealed.
    expect((await spool.sealedSegments()).length).toBe(segments.length - 1);
    expect(await spool.seal()).toBe(true);
    const read = [];
    for (const s of await spool.sealedSegments()) read.push(...(await spool.read(s)).rows);
    expect(read).toEqual(rows);
    await spool.close();
  });

  it("skips a torn last line (an append that was never acknowledged)", async () => {
    const spool = await AuditSpool.open(dir, "w1");
    await spool.append([row(1), row(2)]);
    await spool.seal();
    const [segment] = await spool.sealedSegments();
    await appendFile(segment!.file, '{"v":1,"eventId":"abc","at":"2026-');
    const { rows, unreadable } = await spool.read(segment!);
    expect(rows.map((r) => r.type)).toEqual(["t.1", "t.2"]);
    expect(unreadable).toBe(1);
    await spool.close();
  });

  it("continues numbering after a previous run's segments and removes an empty segment on seal", async () => {
    await writeFile(path.join(dir, "w1.00000007.jsonl"), "");
    const spool = await AuditSpool.open(dir, "w1");
    expect((await spool.sealedSegments()).map((s) => s.number)).toEqual([7]);
    await spool.append([row(1)]);
    expect((await spool.segments()).map((s) => s.number)).toEqual([7, 8]);
    await spool.close();
    const again = await AuditSpool.open(dir, "w1");
    expect(await again.seal()).toBe(false);
    await again.close();
    expect((await readdir(dir)).sort()).toEqual(["w1.00000007.jsonl", "w1.00000008.jsonl"]);
  });

  it("lets one process at a time own a worker id, and takes over a dead owner's lock", async () => {
    const spool = await AuditSpool.open(dir, "w1");
    await expect(AuditSpool.open(dir, "w1")).rejects.toThrow(AuditSpoolLockedError);
    await spool.close();

    // A live process (not us) holds it.
    const child = fork("-e", ["setInterval(() => {}, 1000)"], { execArgv: [], stdio: "ignore" });
    try {
      await writeFile(path.join(dir, "w2.lock"), `${child.pid}\n`);
      await expect(AuditSpool.open(dir, "w2")).rejects.toThrow(/held by running process/);
    } finally {
      child.kill("SIGKILL");
      await new Promise((r) => child.once("exit", r));
    }
    // Now that process is dead: its lock is stale.
    const taken = await AuditSpool.open(dir, "w2");
    expect((await readFile(path.join(dir, "w2.lock"), "utf8")).trim()).toBe(String(process.pid));
    await taken.close();
  });

  it("refuses worker ids that could escape the directory", async () => {
    await expect(AuditSpool.open(dir, "../x")).rejects.toThrow(TypeError);
    await expect(AuditSpool.open(dir, "")).rejects.toThrow(TypeError);
  });

  it("acknowledges nothing when the disk is full, and never appends after a torn write", async () => {
    const spool = await AuditSpool.open(dir, "w1");
    await spool.append([row(1)]);
    await spool.seal();
    // The next segment is the full device.
    await symlink("/dev/full", path.join(dir, "w1.00000002.jsonl"));
    await expect(spool.append([row(2)])).rejects.toThrow(/ENOSPC/);
    expect(spool.syncs).toBe(1);
    // The failed (empty) segment is dropped; the next append starts a fresh one.
    await spool.append([row(3)]);
    await spool.seal();
    const segments = await spool.sealedSegments();
    expect(segments.map((s) => s.number)).toEqual([1, 3]);
    const rows = [];
    for (const s of segments) rows.push(...(await spool.read(s)).rows);
    expect(rows.map((r) => r.type)).toEqual(["t.1", "t.3"]);
    await spool.close();
  });
});
