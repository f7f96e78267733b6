import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";

/**
 * The worker's logger writes standard output in batches (lib/log.ts, bufferedStdout): each case
 * runs a process of its own and reads its real standard output.
 */
const dir = mkdtempSync(path.join(tmpdir(), "bulkhead-worker-log-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(body: string[]): { lines: Promise<Array<{ at: number; line: Record<string, unknown> }>>; exit: Promise<number | null> } {
  const script = path.join(dir, `run-${Math.random().toString(36).slice(2)}.ts`);
  writeFileSync(script, [`import { createLogger } from ${JSON.stringify(path.resolve("lib/log.ts"))};`, `const log = createLogger("proxy-worker", "info", { bufferedStdout: true });`, ...body].join("\n"));
  const started = Date.now();
  const child = spawn(process.execPath, ["--import", "tsx", script], { cwd: process.cwd(), stdio: ["ignore", "pipe", "inherit"] });
  const seen: Array<{ at: number; line: Record<string, unknown> }> = [];
  let rest = "";
  child.stdout.on("data", (d: Buffer) => {
    const parts = (rest + d.toString("utf8")).split("\n");
    rest = parts.pop() ?? "";
    for (const p of parts) if (p) seen.push({ at: Date.now() - started, line: JSON.parse(p) as Record<string, unknown> });
  });
  const exit = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  return { lines: exit.then(() => seen), exit };
}

describe("the worker's buffered log", () => {
  it("writes a lone line within the flush interval, long before the process ends", async () => {
    const r = run([`const t0 = Date.now();`, `log.info({ n: 1 }, "alone");`, `setTimeout(() => log.info({ t: Date.now() - t0 }, "end"), 1500);`]);
    const lines = await r.lines;
    expect(lines.map((l) => l.line.msg)).toEqual(["alone", "end"]);
    // The first line arrived while the process still had 1.5 s to run.
    expect(lines[1]!.at - lines[0]!.at).toBeGreaterThan(1000);
  });

  it("writes everything, in order, and still redacts", async () => {
    const r = run([`for (let i = 0; i < 3000; i++) log.info({ i, request: { password: "hunter2" } }, "line");`, `setTimeout(() => undefined, 300);`]);
    const lines = await r.lines;
    expect(lines.map((l) => l.line.i)).toEqual(Array.from({ length: 3000 }, (_, i) => i));
    expect(lines.every((l) => (l.line.request as { password: string }).password === "[redacted]")).toBe(true);
  });

  it("writes what is buffered when the process exits at once after a fatal error", async () => {
    const r = run([`for (let i = 0; i < 5; i++) log.info({ i }, "before");`, `log.fatal({ err: "boom" }, "uncaught exception: the proxy worker exits");`, `process.exit(70);`]);
    expect(await r.exit).toBe(70);
    const lines = await r.lines;
    expect(lines.map((l) => l.line.msg)).toEqual(["before", "before", "before", "before", "before", "uncaught exception: the proxy worker exits"]);
  });
});

/**
 * Standard output that takes no write (redirected to a full disk: /dev/full answers every write
 * with ENOSPC). The worker's fatal-error path used to retry the write every 100 ms for ever, its
 * main thread asleep; a synchronous logger's line threw into whatever code logged it. Lines are
 * dropped and counted instead, and the process goes on and ends.
 */
describe("loggers whose standard output takes no write", () => {
  function runOnFullDisk(body: string[]): Promise<{ code: number | null; stderr: string; ms: number }> {
    const script = path.join(dir, `full-${Math.random().toString(36).slice(2)}.ts`);
    writeFileSync(script, [`import { createLogger, droppedLogLines } from ${JSON.stringify(path.resolve("lib/log.ts"))};`, ...body].join("\n"));
    const full = openSync("/dev/full", "w");
    const started = Date.now();
    const child = spawn(process.execPath, ["--import", "tsx", script], { cwd: process.cwd(), stdio: ["ignore", full, "pipe"] });
    closeSync(full);
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    return new Promise((resolve) =>
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code, stderr, ms: Date.now() - started });
      }),
    );
  }

  it("the buffered logger drops and counts, and a fatal line followed by exit does not hang", async () => {
    const r = await runOnFullDisk([
      `const log = createLogger("proxy-worker", "info", { bufferedStdout: true });`,
      `for (let i = 0; i < 2000; i++) log.info({ i }, "line");`,
      `setTimeout(() => {`,
      `  log.fatal({ err: "boom" }, "uncaught exception: the proxy worker exits");`,
      `  process.stderr.write(JSON.stringify(droppedLogLines()) + "\\n");`,
      `  process.exit(70);`,
      `}, 400);`,
    ]);
    expect(r.code, r.stderr).toBe(70);
    const dropped = JSON.parse(r.stderr.trim().split("\n").at(-1)!) as { lines: number; lastError: string };
    expect(dropped.lines).toBe(2001);
    expect(dropped.lastError).toMatch(/ENOSPC|no space/i);
  }, 30_000);

  it("a synchronous logger's line neither throws nor stops the code that logged it", async () => {
    const r = await runOnFullDisk([
      `const log = createLogger("dashboard", "info");`,
      `let reached = 0;`,
      `for (let i = 0; i < 50; i++) { log.info({ i }, "line"); log.error({ i }, "an error line"); reached++; }`,
      `process.stderr.write(JSON.stringify({ reached, ...droppedLogLines() }) + "\\n");`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stderr.trim().split("\n").at(-1)!) as { reached: number; lines: number };
    expect(out).toMatchObject({ reached: 50, lines: 100 });
  }, 30_000);
});
