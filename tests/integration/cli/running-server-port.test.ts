import { spawn } from "node:child_process";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { EmbeddedDatabase } from "@/lib/db/embedded";
import { startTestPostgres } from "../../support/test-postgres";

/**
 * A CLI command next to a running Bulkhead needs only its data folder (README): it reaches the
 * embedded server on the port that server was started with (its postmaster.pid says), whatever
 * BULKHEAD_PG_PORT says in the command's environment. It tried the default port and blamed
 * DATABASE_URL.
 */
describe("a CLI command next to a running embedded server on another port", () => {
  let dir = "";
  let server: EmbeddedDatabase | null = null;
  afterAll(async () => {
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const run = (dataDir: string, env: Record<string, string>) =>
    new Promise<{ code: number | null; out: string }>((resolve) => {
      let out = "";
      const child = spawn(process.execPath, ["bin/bulkhead.mjs", "agent", "list"], {
        env: { PATH: process.env.PATH, HOME: dir, BULKHEAD_DATA_DIR: dataDir, ...env } as unknown as NodeJS.ProcessEnv,
        stdio: ["ignore", "pipe", "pipe"],
      });
      child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
      child.stderr!.on("data", (c: Buffer) => (out += c.toString()));
      child.once("exit", (code) => resolve({ code, out }));
    });

  it("finds the server's port in the data folder, with BULKHEAD_PG_PORT unset or different", async () => {
    dir = await mkdtemp(path.join(tmpdir(), "bh-port-"));
    await chmod(dir, 0o711); // the server runs as the postgres user when the tests run as root
    const dataDir = path.join(dir, "data");
    server = await startTestPostgres({ dataDir });
    expect(server.port).not.toBe(54329);
    for (const env of [{}, { BULKHEAD_PG_PORT: String(server.port === 54330 ? 54331 : 54330) }] as Array<Record<string, string>>) {
      const { code, out } = await run(dataDir, env);
      expect(code, out).toBe(0);
      expect(out).toContain("No agents");
      expect(out).not.toMatch(/Cannot reach the database|DATABASE_URL/);
    }
  }, 180_000);
});
