import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { processAlive } from "@/lib/files/process-alive";
import { freePort } from "../../support/free-port";

/**
 * A CLI command that starts the embedded PostgreSQL for itself, ended by a signal sent to it alone
 * (SIGTERM from `timeout` or a supervisor, SIGHUP from a closed terminal, SIGINT): it used to die
 * on the spot and leave its server running with nobody to stop it. It must stop the server first,
 * whether the signal comes while the server starts or while the command uses it, and exit as a
 * shell reports a signal (128 + its number).
 */
describe("a CLI command ended by a signal stops the embedded database it started", () => {
  let dir = "";
  let dataDir = "";
  let env = {} as NodeJS.ProcessEnv;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "bh-signal-"));
    await chmod(dir, 0o711); // the server runs as the postgres user when the tests run as root
    dataDir = path.join(dir, "data");
    env = { PATH: process.env.PATH, HOME: dir, BULKHEAD_DATA_DIR: dataDir, BULKHEAD_PG_PORT: String(await freePort()) } as unknown as NodeJS.ProcessEnv;
    // Set up once (initdb, roles, migrations): the runs below each start and stop the server.
    const setup = spawnSync(process.execPath, ["bin/bulkhead.mjs", "db", "migrate"], { env, encoding: "utf8", timeout: 120_000 });
    expect(setup.status, setup.stderr).toBe(0);
  }, 180_000);

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    const left = postmasterPid();
    if (left !== null && processAlive(left)) process.kill(left, "SIGKILL");
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** The running server's pid from its postmaster.pid (null while there is none, or it is half written). */
  function postmasterPid(): number | null {
    const file = path.join(dataDir, "postgres", "postmaster.pid");
    if (!existsSync(file)) return null;
    const pid = Number(readFileSync(file, "utf8").split("\n")[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  }

  /** Whether a client of the command's own (not the superuser's) is connected: the command is using the server. */
  async function commandConnected(): Promise<boolean> {
    const password = readFileSync(path.join(dataDir, "postgres.password"), "utf8").trim();
    const client = new pg.Client({ connectionString: `postgresql://bulkhead:${encodeURIComponent(password)}@127.0.0.1:${env.BULKHEAD_PG_PORT}/bulkhead`, connectionTimeoutMillis: 2_000 });
    client.on("error", () => undefined); // the server's shutdown ends this connection
    try {
      await client.connect();
      const { rows } = await client.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename <> 'bulkhead' AND backend_type = 'client backend'");
      return (rows[0]?.n ?? 0) > 0;
    } catch {
      return false; // still starting
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /**
   * Runs `agent list`, sends `signal` once `ready` says so, and returns how it ended with the
   * server's pid; null when the command finished before the signal could be sent (retry).
   */
  async function run(signal: NodeJS.Signals, ready: () => Promise<boolean>): Promise<{ code: number | null; signalCode: string | null; stderr: string; server: number } | null> {
    const child = spawn(process.execPath, ["bin/bulkhead.mjs", "agent", "list"], { env, stdio: ["ignore", "pipe", "pipe"] });
    children.push(child);
    let stderr = "";
    child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
    child.stdout!.resume();
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    let server: number | null = null;
    for (const deadline = Date.now() + 60_000; Date.now() < deadline && child.exitCode === null; ) {
      server ??= postmasterPid();
      if (server !== null && (await ready())) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    if (child.exitCode !== null || server === null) {
      await exited;
      return null;
    }
    child.kill(signal);
    await exited;
    return { code: child.exitCode, signalCode: child.signalCode, stderr, server };
  }

  const SIGNALS = { SIGTERM: 143, SIGHUP: 129, SIGINT: 130 } as const;
  const MOMENTS = {
    "while the server starts": async () => true,
    "while the command uses it": commandConnected,
  };

  for (const [signal, code] of Object.entries(SIGNALS)) {
    for (const [moment, ready] of Object.entries(MOMENTS)) {
      it(`${signal} ${moment}`, async () => {
        let ended: Awaited<ReturnType<typeof run>> = null;
        for (let attempt = 0; attempt < 5 && ended === null; attempt++) ended = await run(signal as NodeJS.Signals, ready);
        expect(ended, "the command always finished before the signal could be sent").not.toBeNull();
        const { server, stderr } = ended!;
        expect({ code: ended!.code, signal: ended!.signalCode }, stderr).toEqual({ code, signal: null });
        expect(stderr).toContain(`Received ${signal}: stopping the embedded PostgreSQL this command started.`);
        // Stopped, cleanly: nothing left running and the folder is free for the next command.
        expect(processAlive(server)).toBe(false);
        expect(postmasterPid()).toBeNull();
      }, 120_000);
    }
  }

  // SIGKILL cannot be caught: the guard (cli/runtime/orphan-guard.ts), woken by the closed pipe,
  // stops the server the dead command left.
  for (const [moment, ready] of Object.entries(MOMENTS)) {
    it(`SIGKILL ${moment}: the server it left is stopped all the same`, async () => {
      let ended: Awaited<ReturnType<typeof run>> = null;
      for (let attempt = 0; attempt < 5 && ended === null; attempt++) ended = await run("SIGKILL", ready);
      expect(ended, "the command always finished before the signal could be sent").not.toBeNull();
      expect(ended!.signalCode).toBe("SIGKILL");
      const server = ended!.server;
      for (const deadline = Date.now() + 60_000; Date.now() < deadline && processAlive(server); ) await new Promise((r) => setTimeout(r, 100));
      expect(processAlive(server), "the killed command's PostgreSQL still runs").toBe(false);
      expect(postmasterPid()).toBeNull();
    }, 150_000);
  }

  it("the next command starts its own server and works", async () => {
    const next = spawnSync(process.execPath, ["bin/bulkhead.mjs", "agent", "list"], { env, encoding: "utf8", timeout: 120_000 });
    expect(next.status, next.stderr).toBe(0);
    expect(next.stdout).toContain("No agents");
    expect(postmasterPid()).toBeNull();
  }, 120_000);
});
