import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import http from "node:http";
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { expect, test } from "@playwright/test";
import { openSecret } from "../../lib/crypto/envelope";
import { boxKeyPairFromSeed, openBoxText } from "../../lib/crypto/sealed-box";
import { deriveProcessKeys } from "../../lib/keys/process-keys";
import { freePort } from "../support/free-port";

/** Direct children of `pid` with their command lines, from /proc. */
function childrenOf(pid: number): Array<{ pid: number; cmdline: string }> {
  const out: Array<{ pid: number; cmdline: string }> = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push({ pid: Number(entry), cmdline: readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").join(" ") });
    } catch {
      // the process went away meanwhile
    }
  }
  return out;
}

/** A process's real environment, as the kernel holds it. */
function environOf(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")) {
    const i = entry.indexOf("=");
    if (i > 0) out[entry.slice(0, i)] = entry.slice(i + 1);
  }
  return out;
}

/** Every 32-byte value in an environment, decoded every way a key could be written. */
function keyCandidates(env: Record<string, string>): Buffer[] {
  const out: Buffer[] = [];
  for (const value of Object.values(env)) {
    for (const encoding of ["base64url", "base64", "hex"] as const) {
      const bytes = Buffer.from(value.trim(), encoding);
      if (bytes.length === 32) out.push(bytes);
    }
  }
  return out;
}

const MASTER_TEXT = Buffer.alloc(32, 0x3c).toString("base64url");
const SESSION_SECRET = "launcher-e2e-session-secret-launcher-e2e-session";

/**
 * A data folder, free ports and the launcher's environment (the master key and session secret in
 * it, no network isolation) for a `bulkhead start` of a test's own.
 */
async function launcherSetup(prefix: string, logLevel: string) {
  const dataDir = mkdtempSync(path.join(tmpdir(), prefix));
  const ports = {
    BULKHEAD_APP_PORT: await freePort(),
    BULKHEAD_PG_PORT: await freePort(),
    BULKHEAD_PROXY_PORT: await freePort(),
    BULKHEAD_WORKER_HEALTH_PORT: await freePort(),
    BULKHEAD_TRANSPARENT_HTTP_PORT: await freePort(),
    BULKHEAD_TRANSPARENT_TLS_PORT: await freePort(),
  };
  const env: NodeJS.ProcessEnv = { ...process.env, BULKHEAD_DATA_DIR: dataDir, BULKHEAD_MASTER_KEY: MASTER_TEXT, AUTH_SECRET: SESSION_SECRET, LOG_LEVEL: logLevel, BULKHEAD_ISOLATION: "off" };
  delete env.DATABASE_URL;
  for (const [k, v] of Object.entries(ports)) env[k] = String(v);
  return { dataDir, ports, env };
}

/**
 * The real `bulkhead start`, with a launcher environment that holds the master key and the
 * session secret: each child's environment is read from /proc, the dashboard serves pages with
 * only its own, and a credential stored next to the running stack does not open under any key
 * the dashboard process holds.
 */
test("bulkhead start gives each child only its own secrets", async ({ page }) => {
  test.setTimeout(300_000);
  const dataDir = mkdtempSync(path.join(tmpdir(), "bulkhead-launcher-"));
  const ports = {
    BULKHEAD_APP_PORT: await freePort(),
    BULKHEAD_PG_PORT: await freePort(),
    BULKHEAD_PROXY_PORT: await freePort(),
    BULKHEAD_WORKER_HEALTH_PORT: await freePort(),
    BULKHEAD_TRANSPARENT_HTTP_PORT: await freePort(),
    BULKHEAD_TRANSPARENT_TLS_PORT: await freePort(),
  };
  const env: NodeJS.ProcessEnv = { ...process.env, BULKHEAD_DATA_DIR: dataDir, BULKHEAD_MASTER_KEY: MASTER_TEXT, AUTH_SECRET: SESSION_SECRET, LOG_LEVEL: "warn" };
  delete env.DATABASE_URL;
  for (const [k, v] of Object.entries(ports)) env[k] = String(v);

  const launcher: ChildProcess = spawn(process.execPath, [path.resolve("bin/bulkhead.mjs"), "start"], { env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  launcher.stdout!.on("data", (c: Buffer) => (output += c.toString()));
  launcher.stderr!.on("data", (c: Buffer) => (output += c.toString()));
  try {
    await expect.poll(() => output, { timeout: 240_000, intervals: [500] }).toContain("Press Ctrl-C to stop.");
    const children = childrenOf(launcher.pid!);
    const dashboard = children.find((c) => c.cmdline.includes("app-server.mjs"));
    const worker = children.find((c) => c.cmdline.includes("bulkhead.mjs worker"));
    expect(dashboard, output).toBeDefined();
    expect(worker, output).toBeDefined();
    const dashEnv = environOf(dashboard!.pid);
    const workEnv = environOf(worker!.pid);

    expect(dashEnv.AUTH_SECRET).toBe(SESSION_SECRET);
    expect(dashEnv.BULKHEAD_DASHBOARD_KEY).toBeDefined();
    expect(dashEnv.BULKHEAD_WORKER_PUBLIC_KEY).toBeDefined();
    for (const name of ["BULKHEAD_MASTER_KEY", "BULKHEAD_WORKER_KEY", "BULKHEAD_CHECKPOINT_KEY"]) expect(dashEnv[name], `dashboard ${name}`).toBeUndefined();
    expect(workEnv.BULKHEAD_WORKER_KEY).toBeDefined();
    expect(workEnv.BULKHEAD_CHECKPOINT_KEY).toBeUndefined();
    for (const name of ["BULKHEAD_MASTER_KEY", "AUTH_SECRET", "BULKHEAD_DASHBOARD_KEY", "BULKHEAD_OIDC_CLIENT_SECRET"]) expect(workEnv[name], `worker ${name}`).toBeUndefined();
    for (const [who, e] of [["dashboard", dashEnv], ["worker", workEnv]] as const) {
      expect(Object.values(e).join("\n"), who).not.toContain(MASTER_TEXT);
    }
    expect(Object.values(workEnv).join("\n")).not.toContain(SESSION_SECRET);

    // Both work with what they were given.
    const login = await page.goto(`http://127.0.0.1:${ports.BULKHEAD_APP_PORT}/login`);
    expect(login?.status()).toBe(200);
    await expect(page.getByRole("heading", { name: "Sign in to Bulkhead" })).toBeVisible();
    // The launcher announces itself when the dashboard is up; the worker may still be starting.
    const readyz = `http://127.0.0.1:${ports.BULKHEAD_WORKER_HEALTH_PORT}/readyz`;
    await expect.poll(() => fetch(readyz).then((r) => r.status, () => 0), { timeout: 60_000, intervals: [250] }).toBe(200);

    // A second `bulkhead start` on the same data folder (its own ports, so none is taken) is
    // refused before it touches anything: it used to take the running PostgreSQL for a leftover
    // of a killed run and stop it under the first.
    const otherPorts: Record<string, string> = {};
    for (const name of Object.keys(ports)) otherPorts[name] = String(await freePort());
    const second = spawnSync(process.execPath, [path.resolve("bin/bulkhead.mjs"), "start"], { env: { ...env, ...otherPorts }, encoding: "utf8", timeout: 120_000 });
    expect(second.status, second.stderr).toBe(1);
    expect(second.stderr).toContain(`Bulkhead is already running on the data folder ${dataDir} (bulkhead start, pid ${launcher.pid})`);
    expect(second.stderr).not.toContain("stopping it cleanly");
    await expect.poll(() => fetch(readyz).then((r) => r.status, () => 0), { timeout: 10_000, intervals: [250] }).toBe(200);
    const still = new pg.Client({ connectionString: `postgresql://bulkhead:${encodeURIComponent(readFileSync(path.join(dataDir, "postgres.password"), "utf8").trim())}@127.0.0.1:${ports.BULKHEAD_PG_PORT}/bulkhead` });
    await still.connect();
    expect((await still.query<{ one: number }>("SELECT 1 AS one")).rows[0]!.one).toBe(1);
    await still.end();

    // The embedded PostgreSQL killed under the running stack is started again by the launcher,
    // and the stack works on (the CLI step below needs the database).
    const postmaster = Number(readFileSync(path.join(dataDir, "postgres", "postmaster.pid"), "utf8").split("\n")[0]);
    process.kill(postmaster, "SIGKILL");
    await expect.poll(() => output, { timeout: 60_000, intervals: [250] }).toContain("The embedded PostgreSQL is running again.");
    expect(output).toContain("The embedded PostgreSQL exited unexpectedly (SIGKILL); restarting it.");
    expect(Number(readFileSync(path.join(dataDir, "postgres", "postmaster.pid"), "utf8").split("\n")[0])).not.toBe(postmaster);
    expect(launcher.exitCode).toBeNull();

    // A dashboard killed under the running stack (the out-of-memory killer's usual pick) comes
    // back; the worker is not touched meanwhile.
    process.kill(dashboard!.pid, "SIGKILL");
    await expect.poll(() => output, { timeout: 30_000, intervals: [250] }).toContain("The dashboard exited unexpectedly (SIGKILL); restarting in");
    await expect.poll(() => fetch(`http://127.0.0.1:${ports.BULKHEAD_APP_PORT}/login`).then((r) => r.status, () => 0), { timeout: 60_000, intervals: [250] }).toBe(200);
    const after = childrenOf(launcher.pid!);
    expect(after.find((c) => c.cmdline.includes("app-server.mjs"))?.pid).not.toBe(dashboard!.pid);
    expect(after.find((c) => c.cmdline.includes("bulkhead.mjs worker"))?.pid).toBe(worker!.pid);
    expect(launcher.exitCode).toBeNull();

    // A credential stored next to the running stack (the CLI holds the master key)...
    const secret = `ghp_${Date.now()}Zq2LmN7vR1xT9kW3yB6cD0eH5`;
    const added = spawnSync(process.execPath, [path.resolve("bin/bulkhead.mjs"), "credential", "add", "--name", "prod-token", "--host", "api.prod.test", "--env", "production", "--header", "Authorization: Bearer {secret}", "--json"], {
      env,
      input: secret,
      encoding: "utf8",
      timeout: 120_000,
    });
    expect(added.status, added.stderr).toBe(0);
    const { id } = JSON.parse(added.stdout.trim().split("\n").at(-1)!) as { id: string };
    const password = readFileSync(path.join(dataDir, "postgres.password"), "utf8").trim();
    const client = new pg.Client({ connectionString: `postgresql://bulkhead:${encodeURIComponent(password)}@127.0.0.1:${ports.BULKHEAD_PG_PORT}/bulkhead` });
    await client.connect();
    const { rows } = await client.query<{ sealed: string }>("SELECT secret_sealed AS sealed FROM credentials WHERE id = $1", [id]);
    await client.end();
    const sealed = rows[0]!.sealed;
    const aad = `credential:${id}`;

    // ...does not open under anything the dashboard process holds,
    const candidates = keyCandidates(dashEnv);
    expect(candidates.length).toBeGreaterThanOrEqual(2);
    for (const key of candidates) {
      expect(() => openBoxText(boxKeyPairFromSeed(key), sealed, aad)).toThrow();
      expect(() => openSecret(sealed, key, aad)).toThrow();
      expect(() => openBoxText(deriveProcessKeys(key).workerKey, sealed, aad)).toThrow();
    }
    // ...and opens with the worker's own key (so the attempts above could have succeeded).
    expect(openBoxText(boxKeyPairFromSeed(Buffer.from(workEnv.BULKHEAD_WORKER_KEY!, "base64url")), sealed, aad)).toBe(secret);
  } finally {
    const exited = new Promise((r) => launcher.once("exit", r));
    launcher.kill("SIGINT");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
    if (launcher.exitCode === null) launcher.kill("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  }
});

/** Every descendant of `pid` (children, their children...), from /proc. */
function descendantsOf(pid: number): Array<{ pid: number; cmdline: string }> {
  const out: Array<{ pid: number; cmdline: string }> = [];
  for (let frontier = [pid]; frontier.length > 0; ) {
    const next = frontier.flatMap((p) => childrenOf(p));
    out.push(...next);
    frontier = next.map((c) => c.pid);
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * `npm start` as a supervisor or a test harness runs it: npm runs the launcher through a shell,
 * and a signal sent to npm alone (SIGTERM from a supervisor, or a SIGKILL that nobody can pass
 * on) must still stop PostgreSQL, the dashboard and the worker, not leave them running orphaned
 * with the data folder taken.
 */
test("npm start: stopping npm (SIGTERM, or SIGKILL) stops the launcher and everything it started", async () => {
  test.setTimeout(420_000);
  const { dataDir, env } = await launcherSetup("bulkhead-npm-start-", "warn");
  const started: number[] = [];
  try {
    for (const signal of ["SIGTERM", "SIGKILL"] as const) {
      const npm = spawn("npm", ["start"], { env, stdio: ["ignore", "pipe", "pipe"] });
      let output = "";
      npm.stdout!.on("data", (c: Buffer) => (output += c.toString()));
      npm.stderr!.on("data", (c: Buffer) => (output += c.toString()));
      await expect.poll(() => output, { timeout: 300_000, intervals: [500] }).toContain("Press Ctrl-C to stop.");
      const tree = descendantsOf(npm.pid!);
      const launcher = tree.find((p) => p.cmdline.includes("bin/bulkhead.mjs start"));
      const postgres = tree.find((p) => /\/postgres\s.*-D /.test(p.cmdline));
      expect(launcher, tree.map((p) => p.cmdline).join("\n")).toBeDefined();
      expect(postgres, tree.map((p) => p.cmdline).join("\n")).toBeDefined();
      started.push(...tree.map((p) => p.pid));

      npm.kill(signal);
      await expect.poll(() => tree.filter((p) => alive(p.pid)).map((p) => p.cmdline), { timeout: 60_000, intervals: [250] }).toEqual([]);
      // Stopped in order, not torn down: PostgreSQL shut down cleanly and the folder is free again.
      expect(readdirSync(path.join(dataDir, "postgres"))).not.toContain("postmaster.pid");
      expect(output).toContain("Stopped. Data is kept for the next start.");
    }
  } finally {
    for (const pid of started) if (alive(pid)) process.kill(pid, "SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  }
});

/** A process's CPU time so far (user + system), in seconds, from /proc. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;
  return (Number(fields[11]) + Number(fields[12])) / ticks;
}

/**
 * The launcher's output read through a pipe whose reader goes away (`npm start | tee log` with tee
 * gone, a log collector restarted): every process that writes there gets EPIPE from then on. The
 * dashboard's first log line after that (an Auth.js error for a forged sign-in, here) made an
 * EPIPE error that Next logged to the same closed stream, and so on without end: the dashboard
 * spun a core and stopped answering. Each process must go on serving and drop its output.
 */
test("bulkhead start whose output reader goes away keeps serving", async () => {
  test.setTimeout(300_000);
  const { dataDir, ports, env } = await launcherSetup("bulkhead-closed-output-", "info");
  const launcher: ChildProcess = spawn(process.execPath, [path.resolve("bin/bulkhead.mjs"), "start"], { env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  launcher.stdout!.on("data", (c: Buffer) => (output += c.toString()));
  launcher.stderr!.on("data", (c: Buffer) => (output += c.toString()));
  let tree: Array<{ pid: number; cmdline: string }> = [];
  try {
    await expect.poll(() => output, { timeout: 240_000, intervals: [500] }).toContain("Press Ctrl-C to stop.");
    const app = `http://127.0.0.1:${ports.BULKHEAD_APP_PORT}`;
    const readyz = `http://127.0.0.1:${ports.BULKHEAD_WORKER_HEALTH_PORT}/readyz`;
    await expect.poll(() => fetch(readyz).then((r) => r.status, () => 0), { timeout: 60_000, intervals: [250] }).toBe(200);
    tree = descendantsOf(launcher.pid!);
    const dashboard = tree.find((p) => p.cmdline.includes("app-server.mjs"));
    expect(dashboard, tree.map((p) => p.cmdline).join("\n")).toBeDefined();

    // The reader goes away: both pipes closed at this end.
    launcher.stdout!.destroy();
    launcher.stderr!.destroy();

    // Things every process logs: a forged sign-in (the dashboard, Auth.js's error line), requests
    // the proxy refuses (the worker), a page.
    const noisy = async () => {
      for (let i = 0; i < 3; i++) {
        await fetch(`${app}/api/auth/callback/credentials`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "email=a%40b.test&password=x", redirect: "manual", signal: AbortSignal.timeout(10_000) }).catch(() => null);
        await new Promise<void>((resolve) => {
          const req = http.request({ host: "127.0.0.1", port: ports.BULKHEAD_PROXY_PORT, method: "GET", path: "http://api.example.test/", headers: { host: "api.example.test" }, timeout: 10_000 }, (res) => res.resume().on("end", resolve));
          req.on("error", () => resolve()).on("timeout", () => req.destroy());
          req.end();
        });
      }
    };
    await noisy();
    await new Promise((r) => setTimeout(r, 500));
    const before = cpuSeconds(dashboard!.pid);
    // Serving on, and idle when asked nothing: a write loop would take the whole 3 s.
    for (let i = 0; i < 6; i++) {
      expect((await fetch(`${app}/login`, { signal: AbortSignal.timeout(10_000) })).status).toBe(200);
      expect((await fetch(readyz, { signal: AbortSignal.timeout(10_000) })).status).toBe(200);
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(cpuSeconds(dashboard!.pid) - before).toBeLessThan(1.5);
    await noisy();
    expect((await fetch(`${app}/login`, { signal: AbortSignal.timeout(10_000) })).status).toBe(200);
    expect(descendantsOf(launcher.pid!).map((p) => p.pid)).toEqual(expect.arrayContaining(tree.map((p) => p.pid)));

    // And it still stops cleanly, everything it started with it.
    const exited = new Promise((r) => launcher.once("exit", r));
    launcher.kill("SIGINT");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 60_000))]);
    expect(launcher.exitCode).toBe(0);
    await expect.poll(() => tree.filter((p) => alive(p.pid)).map((p) => p.cmdline), { timeout: 30_000, intervals: [250] }).toEqual([]);
    expect(readdirSync(path.join(dataDir, "postgres"))).not.toContain("postmaster.pid");
  } finally {
    if (launcher.exitCode === null) launcher.kill("SIGKILL");
    for (const p of tree) if (alive(p.pid)) process.kill(p.pid, "SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  }
});

/**
 * The signals that end `bulkhead start` besides Ctrl-C: SIGHUP (the terminal it ran in closed) was
 * not handled, so the launcher died at once and left PostgreSQL running; and a SIGTERM that came
 * while the embedded database was starting (before the launcher's handlers) did the same. Both
 * must stop everything in order.
 */
test("bulkhead start stops everything on SIGHUP, and on SIGTERM while its database starts", async () => {
  test.setTimeout(300_000);
  const { dataDir, env } = await launcherSetup("bulkhead-signals-", "warn");
  const pidFile = path.join(dataDir, "postgres", "postmaster.pid");
  const postmaster = () => {
    try {
      const pid = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
      return pid > 0 ? pid : null;
    } catch {
      return null;
    }
  };
  const started: number[] = [];
  const launch = () => {
    const launcher = spawn(process.execPath, [path.resolve("bin/bulkhead.mjs"), "start"], { env, stdio: ["ignore", "pipe", "pipe"] });
    started.push(launcher.pid!);
    const run = { launcher, output: "", exited: new Promise<number | null>((r) => launcher.once("exit", (code) => r(code))) };
    launcher.stdout!.on("data", (c: Buffer) => (run.output += c.toString()));
    launcher.stderr!.on("data", (c: Buffer) => (run.output += c.toString()));
    return run;
  };
  try {
    // SIGTERM as soon as PostgreSQL is starting (its pid file is written early in its start).
    const first = launch();
    await expect.poll(postmaster, { timeout: 120_000, intervals: [5] }).not.toBeNull();
    const server = postmaster()!;
    started.push(server);
    first.launcher.kill("SIGTERM");
    expect(await Promise.race([first.exited, new Promise((r) => setTimeout(() => r("still running"), 60_000))]), first.output).toBe(0);
    expect(alive(server), first.output).toBe(false);
    expect(existsSync(pidFile)).toBe(false);

    // SIGHUP once everything runs.
    const second = launch();
    await expect.poll(() => second.output, { timeout: 240_000, intervals: [500] }).toContain("Press Ctrl-C to stop.");
    const tree = descendantsOf(second.launcher.pid!);
    started.push(...tree.map((p) => p.pid));
    expect(tree.some((p) => p.cmdline.includes("app-server.mjs")) && tree.some((p) => p.cmdline.includes("bulkhead.mjs worker")), tree.map((p) => p.cmdline).join("\n")).toBe(true);
    second.launcher.kill("SIGHUP");
    expect(await Promise.race([second.exited, new Promise((r) => setTimeout(() => r("still running"), 60_000))]), second.output).toBe(0);
    expect(second.output).toContain("Stopped. Data is kept for the next start.");
    await expect.poll(() => tree.filter((p) => alive(p.pid)).map((p) => p.cmdline), { timeout: 30_000, intervals: [250] }).toEqual([]);
    expect(existsSync(pidFile)).toBe(false);
  } finally {
    for (const pid of started) if (alive(pid)) process.kill(pid, "SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  }
});

/**
 * Output redirected to a full disk (/dev/full answers every write with ENOSPC): the worker's first
 * log line failed with an error nobody handled, its fatal-error path then retried the same write
 * every 100 ms for ever, and the worker hung with its ports unanswered. Every process must serve
 * on, dropping (and counting) the lines it cannot write.
 */
test("bulkhead start whose output goes to a full disk keeps serving", async () => {
  test.setTimeout(300_000);
  const { dataDir, ports, env } = await launcherSetup("bulkhead-full-output-", "info");
  const full = openSync("/dev/full", "w");
  const launcher = spawn(process.execPath, [path.resolve("bin/bulkhead.mjs"), "start"], { env, stdio: ["ignore", full, full] });
  closeSync(full);
  const exited = new Promise<number | null>((r) => launcher.once("exit", (code) => r(code)));
  let tree: Array<{ pid: number; cmdline: string }> = [];
  const app = `http://127.0.0.1:${ports.BULKHEAD_APP_PORT}`;
  const health = `http://127.0.0.1:${ports.BULKHEAD_WORKER_HEALTH_PORT}`;
  const status = (url: string) => fetch(url, { signal: AbortSignal.timeout(5_000) }).then((r) => r.status, () => 0);
  try {
    await expect.poll(() => status(`${health}/readyz`), { timeout: 240_000, intervals: [500] }).toBe(200);
    await expect.poll(() => status(`${app}/login`), { timeout: 60_000, intervals: [500] }).toBe(200);
    tree = descendantsOf(launcher.pid!);
    // Refused proxy requests (a line each from the worker) and a forged sign-in (the dashboard's).
    for (let i = 0; i < 5; i++) {
      const code = await new Promise<number>((resolve) => {
        const req = http.request({ host: "127.0.0.1", port: ports.BULKHEAD_PROXY_PORT, method: "GET", path: "http://api.example.test/", headers: { host: "api.example.test" }, timeout: 10_000 }, (res) => res.resume().on("end", () => resolve(res.statusCode ?? 0)));
        req.on("error", () => resolve(0)).on("timeout", () => req.destroy());
        req.end();
      });
      expect(code).toBe(407);
      await fetch(`${app}/api/auth/callback/credentials`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "email=a%40b.test&password=x", redirect: "manual", signal: AbortSignal.timeout(10_000) }).catch(() => null);
    }
    await new Promise((r) => setTimeout(r, 500));
    expect(await status(`${health}/readyz`)).toBe(200);
    expect(await status(`${app}/login`)).toBe(200);
    const metrics = await (await fetch(`${health}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
    expect(Number(/^bulkhead_log_lines_dropped (\d+)/m.exec(metrics)?.[1] ?? 0)).toBeGreaterThan(0);
    expect(descendantsOf(launcher.pid!).map((p) => p.pid)).toEqual(expect.arrayContaining(tree.map((p) => p.pid)));

    launcher.kill("SIGINT");
    expect(await Promise.race([exited, new Promise((r) => setTimeout(() => r("still running"), 60_000))])).toBe(0);
    await expect.poll(() => tree.filter((p) => alive(p.pid)).map((p) => p.cmdline), { timeout: 30_000, intervals: [250] }).toEqual([]);
  } finally {
    if (launcher.exitCode === null) launcher.kill("SIGKILL");
    for (const p of tree) if (alive(p.pid)) process.kill(p.pid, "SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  }
});
