import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real `bulkhead` command (the compiled CLI, as an operator runs it) with only `env`. */
function bulkhead(args: string[], env: Record<string, string | undefined>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.resolve("bin/bulkhead.mjs"), ...args], { env: env as NodeJS.ProcessEnv, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * A command that does not need the database neither connects to one nor starts the embedded
 * one: the help text, `db roles` (SQL for a DBA) and offline policy checks. DATABASE_URL points at
 * a listener that counts connection attempts, and the embedded server's data folder is empty: a
 * command that touched either would be seen. A command that does need the database is run against
 * the same listener to show that the count would notice.
 */
describe("commands that need no database do not touch one", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "bulkhead-nodb-"));
  const policy = path.join(dir, "policy.yaml");
  let listener: net.Server;
  let attempts = 0;
  let port = 0;

  beforeAll(async () => {
    writeFileSync(policy, "rules:\n  - id: read-github\n    service: github\n    effects: [read]\n");
    listener = net.createServer((socket) => {
      attempts++;
      socket.destroy(); // never a PostgreSQL: a command that needed it fails fast
    });
    await new Promise<void>((r) => listener.listen(0, "127.0.0.1", () => r()));
    port = (listener.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((r) => listener.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  const external = () => ({
    PATH: process.env.PATH,
    HOME: dir,
    DATABASE_URL: `postgresql://bulkhead_owner:secret@127.0.0.1:${port}/bulkhead`,
    BULKHEAD_DASHBOARD_DATABASE_URL: `postgresql://bulkhead_dashboard:secret@127.0.0.1:${port}/bulkhead`,
    BULKHEAD_WORKER_DATABASE_URL: `postgresql://bulkhead_worker:secret@127.0.0.1:${port}/bulkhead`,
    BULKHEAD_DATA_DIR: path.join(dir, "external"),
  });
  const embedded = () => ({ PATH: process.env.PATH, HOME: dir, BULKHEAD_DATA_DIR: path.join(dir, "embedded"), BULKHEAD_PG_PORT: String(port) });

  const cases: Array<{ name: string; args: string[]; expectOut: RegExp }> = [
    { name: "--help", args: ["--help"], expectOut: /Usage: bulkhead <command>/ },
    { name: "db roles", args: ["db", "roles"], expectOut: /CREATE ROLE/ },
    { name: "policy check --offline", args: ["policy", "check", policy, "--offline"], expectOut: /./ },
    { name: "policy templates", args: ["policy", "templates"], expectOut: /./ },
    { name: "policy schema", args: ["policy", "schema"], expectOut: /"\$schema"|"type"/ },
    // Help for one command never runs it: `start --help` starts nothing, `worker -h` serves nothing.
    { name: "start --help", args: ["start", "--help"], expectOut: /^usage: bulkhead start\n/ },
    { name: "worker -h", args: ["worker", "-h"], expectOut: /^usage: bulkhead worker\n/ },
    { name: "help audit", args: ["help", "audit"], expectOut: /bulkhead audit verify-archive FILE/ },
    { name: "audit export --help", args: ["audit", "export", "--help"], expectOut: /bulkhead audit export \[--format csv\|jsonl\|ocsf\]/ },
    { name: "agent create --name x -h", args: ["agent", "create", "--name", "x", "-h"], expectOut: /bulkhead agent create --name N/ },
    { name: "task --help --json", args: ["task", "--help", "--json"], expectOut: /^\{"command":"task","usage":"usage:/ },
  ];

  for (const c of cases) {
    it(`${c.name} answers with an unreachable external database and connects to nothing`, async () => {
      const before = attempts;
      const r = await bulkhead(c.args, external());
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(c.expectOut);
      expect(attempts - before).toBe(0);
    });

    it(`${c.name} does not start the embedded database`, async () => {
      const before = attempts;
      const r = await bulkhead(c.args, embedded());
      expect(r.code, r.stderr).toBe(0);
      expect(existsSync(path.join(dir, "embedded", "postgres"))).toBe(false);
      expect(attempts - before).toBe(0);
    });
  }

  // The names go into SQL comments and a psql hint of a script a superuser runs: a line break in
  // one started a statement of its own there (`x\nDROP DATABASE bulkhead;`).
  it("db roles refuses names with control characters, and policy schema refuses arguments", async () => {
    for (const args of [["db", "roles", "--owner", "x\nDROP DATABASE bulkhead;"], ["db", "roles", "--database", "bh\rDROP TABLE x;"], ["db", "roles", "--worker", "w\u001b[2J"]]) {
      const r = await bulkhead(args, external());
      expect(r.code, r.stdout).toBe(2);
      expect(r.stderr).toMatch(/must not contain control characters/);
      expect(r.stdout).not.toContain("DROP");
    }
    for (const args of [["policy", "schema", "extra"], ["policy", "schema", "--bogus"]]) {
      const r = await bulkhead(args, external());
      expect(r.code, r.stdout).toBe(2);
      expect(r.stdout).toBe("");
    }
  });

  it("start and worker refuse arguments instead of starting with them", async () => {
    for (const args of [["start", "--port", "9000"], ["worker", "now"]]) {
      const before = attempts;
      const r = await bulkhead(args, embedded());
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`unexpected argument "${args[1]}"`);
      expect(r.stderr).toContain(`bulkhead help ${args[0]}`);
      expect(existsSync(path.join(dir, "embedded", "postgres"))).toBe(false);
      expect(attempts - before).toBe(0);
    }
  });

  it("help for an unknown command fails and names it", async () => {
    const r = await bulkhead(["help", "volumes"], external());
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command "volumes"');
  });

  it("a command that needs the database does try to connect (the count above can see it)", async () => {
    const before = attempts;
    const r = await bulkhead(["task", "list"], external());
    expect(r.code).not.toBe(0);
    expect(attempts - before).toBeGreaterThan(0);
  });
});
