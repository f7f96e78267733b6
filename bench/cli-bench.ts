/**
 * `npm run bench -- cli`: how long the `bulkhead` command takes, as a security team runs it next
 * to a running Bulkhead. The embedded PostgreSQL of a fresh data folder is started here the way
 * `bulkhead start` starts it (cli/runtime/database.ts, `running: "restart"`), so every command
 * finds it running and reuses it; then each command runs as its own process through
 * `node bin/bulkhead.mjs` (the compiled CLI, as `npx bulkhead` runs it without npm's own second),
 * round after round, every command once per round, so that the machine's noise falls on all of
 * them alike. Wall time from spawn to exit; the process's CPU (user + system, all its threads)
 * from `/usr/bin/time` when it is installed.
 *
 * The bar (BENCHMARKS.md, issue "A compiled worker and CLI"): `--help` under 300 ms, a typical
 * command under 1 s. Settings: BENCH_REPEATS (rounds, default 7); BENCH_CLI_COMPARE=<another
 * checkout's bin/bulkhead.mjs> runs every command with that build too, alternated with this one
 * in every round (before/after in one run, on one database). Prints the table and writes
 * bench/results/cli.json.
 */
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { openDatabase } from "@/cli/runtime/database";
import { loadCommonConfig } from "@/lib/config/common";
import { generateMasterKey } from "@/lib/crypto/envelope";
import { installCleanupHandlers, onCleanup, runMain, tempFolder } from "./support/children";
import { describeMachine } from "./support/machine";
import { freePort } from "./support/ports";
import { median, round } from "./support/stats";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const bins: Array<{ label: string; bin: string }> = [{ label: "this", bin: path.join(root, "bin", "bulkhead.mjs") }];
if (process.env.BENCH_CLI_COMPARE) bins.unshift({ label: "compared", bin: path.resolve(process.env.BENCH_CLI_COMPARE) });
const TIME = "/usr/bin/time";
const hasTime = existsSync(TIME);

interface Run {
  wallMs: number;
  cpuMs: number | null;
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs one command and waits for it (asynchronously: between runs the event loop turns, so Ctrl-C
 * stops the bench and its database at once rather than after the last round).
 */
async function runCli(args: string[], env: Record<string, string | undefined>, input?: string, bin = bins.at(-1)!.bin): Promise<Run> {
  const timeFile = path.join(env.BULKHEAD_DATA_DIR!, "..", "time.out");
  const argv = hasTime ? [TIME, "-q", "-f", "%U %S", "-o", timeFile, process.execPath, bin, ...args] : [process.execPath, bin, ...args];
  const started = process.hrtime.bigint();
  const child = spawn(argv[0]!, argv.slice(1), { env: env as NodeJS.ProcessEnv, stdio: ["pipe", "pipe", "pipe"], timeout: 120_000 });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  child.stdin.end(input ?? "");
  const code = await new Promise<number>((resolve) => {
    child.once("error", (error) => {
      stderr += error.message;
      resolve(1);
    });
    child.once("close", (status) => resolve(status ?? 1));
  });
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  let cpuMs: number | null = null;
  if (hasTime) {
    const text = readFileSync(timeFile, "utf8").trim().split("\n").pop() ?? "";
    const [user, system] = text.split(" ").map(Number);
    if (Number.isFinite(user) && Number.isFinite(system)) cpuMs = (user! + system!) * 1000;
  }
  return { wallMs, cpuMs, code, stdout, stderr };
}

function must(run: Run, what: string): string {
  if (run.code !== 0) throw new Error(`${what} failed (exit ${run.code}): ${run.stderr.trim() || run.stdout.trim()}`);
  return run.stdout;
}

export interface CliCommandResult {
  command: string;
  build: string;
  runs: number;
  wallMs: { median: number; min: number; max: number };
  cpuMs: { median: number; min: number } | null;
  barMs: number;
  met: boolean;
}

async function runCliBench(): Promise<void> {
  installCleanupHandlers();
  const started = Date.now();
  const repeats = Math.max(1, Math.floor(Number(process.env.BENCH_REPEATS ?? 7)) || 7);
  const folder = tempFolder("bulkhead-bench-cli-");
  chmodSync(folder, 0o711); // the embedded server runs as its own user (as root) and must reach its folder
  const dataDir = path.join(folder, "data");
  mkdirSync(dataDir);
  const env: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    BULKHEAD_DATA_DIR: dataDir,
    BULKHEAD_MASTER_KEY: generateMasterKey(),
    BULKHEAD_PG_PORT: String(await freePort()),
    BULKHEAD_ISOLATION: "off",
    LOG_LEVEL: "warn",
  };
  console.log("starting an embedded PostgreSQL for a fresh data folder, as `bulkhead start` does...");
  const database = await openDatabase(loadCommonConfig(env), { running: "restart", log: (line) => console.log(`  ${line}`) });
  // Ctrl-C or an error anywhere: the server is stopped before its folder is removed.
  const forget = onCleanup(() => database.close());
  try {
    // Setting up as a new user would: the schema, an admin, an agent with a task to mint tokens for, and one to suspend.
    must(await runCli(["db", "migrate"], env), "db migrate");
    must(await runCli(["user", "create", "--email", "admin@bench.test", "--role", "admin"], env, "bench-password-0123456789\n"), "user create");
    const agent = (JSON.parse(must(await runCli(["agent", "create", "--name", "bench-agent", "--json"], env), "agent create")) as { id: string }).id;
    const other = (JSON.parse(must(await runCli(["agent", "create", "--name", "bench-suspended", "--json"], env), "agent create")) as { id: string }).id;
    const task = (JSON.parse(must(await runCli(["task", "create", "--agent", agent, "--purpose", "bench", "--scope", "none", "--ttl", "2h", "--json"], env), "task create")) as { id: string }).id;

    let n = 0;
    const commands: Array<{ name: string; args: () => string[]; barMs: number }> = [
      { name: "--help", args: () => ["--help"], barMs: 300 },
      { name: "agent list", args: () => ["agent", "list"], barMs: 1000 },
      { name: "task list", args: () => ["task", "list"], barMs: 1000 },
      { name: "agent create", args: () => ["agent", "create", "--name", `bench-${++n}`], barMs: 1000 },
      { name: "task create", args: () => ["task", "create", "--agent", agent, "--purpose", `bench ${++n}`, "--scope", "none"], barMs: 1000 },
      { name: "token mint", args: () => ["token", "mint", "--task", task], barMs: 1000 },
      { name: "agent suspend", args: () => ["agent", "suspend", other], barMs: 1000 },
      { name: "agent reactivate", args: () => ["agent", "reactivate", other], barMs: 1000 },
      { name: "keys status", args: () => ["keys", "status"], barMs: 1000 },
      { name: "audit verify", args: () => ["audit", "verify"], barMs: 1000 },
    ];
    // One unmeasured round: the page cache and the compiled CLI as a second run finds them.
    for (const c of commands) for (const b of bins) must(await runCli(c.args(), env, undefined, b.bin), `${c.name} (${b.label})`);
    const key = (build: string, command: string) => `${build}\u0000${command}`;
    const samples = new Map<string, Run[]>();
    for (let r = 0; r < repeats; r++) {
      for (const c of commands) {
        for (const b of r % 2 === 0 ? bins : [...bins].reverse()) {
          const run = await runCli(c.args(), env, undefined, b.bin);
          must(run, `${c.name} (${b.label})`);
          if (!samples.has(key(b.label, c.name))) samples.set(key(b.label, c.name), []);
          samples.get(key(b.label, c.name))!.push(run);
        }
      }
      console.log(`round ${r + 1}/${repeats}: ${commands.map((c) => `${c.name} ${bins.map((b) => Math.round(samples.get(key(b.label, c.name))!.at(-1)!.wallMs)).join("/")} ms`).join(", ")}`);
    }

    const results: CliCommandResult[] = commands.flatMap((c) =>
      bins.map((b) => {
        const runs = samples.get(key(b.label, c.name))!;
        const walls = runs.map((x) => x.wallMs);
        const cpus = runs.map((x) => x.cpuMs).filter((x): x is number => x !== null);
        const wall = { median: round(median(walls), 0), min: round(Math.min(...walls), 0), max: round(Math.max(...walls), 0) };
        return { command: c.name, build: b.label, runs: runs.length, wallMs: wall, cpuMs: cpus.length ? { median: round(median(cpus), 0), min: round(Math.min(...cpus), 0) } : null, barMs: c.barMs, met: wall.median <= c.barMs };
      }),
    );

    const machine = await describeMachine();
    console.log(`\n#### The CLI next to a running embedded PostgreSQL (node bin/bulkhead.mjs, ${repeats} rounds, every command once a round)\n`);
    if (bins.length > 1) console.log(`builds: ${bins.map((b) => `${b.label} = ${b.bin}`).join("; ")}\n`);
    console.log(`| command |${bins.length > 1 ? " build |" : ""} wall median (min-max) | CPU median (min) | bar | status |`);
    console.log(`| --- |${bins.length > 1 ? " --- |" : ""} --- | --- | --- | --- |`);
    for (const r of results) {
      const cpu = r.cpuMs ? `${r.cpuMs.median} ms (${r.cpuMs.min})` : "–";
      console.log(`| \`bulkhead ${r.command}\` |${bins.length > 1 ? ` ${r.build} |` : ""} ${r.wallMs.median} ms (${r.wallMs.min}-${r.wallMs.max}) | ${cpu} | ≤ ${r.barMs} ms | ${r.met ? "met" : "**NOT met**"} |`);
    }
    const out = path.join(root, "bench", "results", "cli.json");
    mkdirSync(path.dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify({ at: new Date().toISOString(), machine, repeats, builds: bins, results, durationSeconds: Math.round((Date.now() - started) / 1000) }, null, 2)}\n`);
    console.log(`\nwrote ${path.relative(root, out)}`);
  } finally {
    forget();
    await database.close();
  }
}

runMain(runCliBench);
