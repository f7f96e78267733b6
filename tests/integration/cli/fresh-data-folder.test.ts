import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";

function bulkhead(args: string[], env: Record<string, string | undefined>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.resolve("bin/bulkhead.mjs"), ...args], { env: env as NodeJS.ProcessEnv, timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

/**
 * A command run outside the folder Bulkhead was started in makes a new, empty database in the
 * folder it is given (./.data by default); its "No agents." must not read as an answer about the
 * real Bulkhead, so the command says what it did. Once the folder has a database, nothing is said.
 */
describe("a CLI command in a folder with no Bulkhead database", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "bulkhead-fresh-"));
  // The embedded server runs as its own user when the tests run as root: it must reach the folder.
  chmodSync(dir, 0o711);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("says that it made a new, empty database there, and only the first time", async () => {
    const env = { PATH: process.env.PATH, HOME: dir, BULKHEAD_DATA_DIR: path.join(dir, "data"), BULKHEAD_PG_PORT: String(await freePort()) };
    const first = await bulkhead(["agent", "list"], env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain("No agents.");
    expect(first.stderr).toContain(`Note: there was no Bulkhead database in ${path.join(dir, "data")}, so a new, empty one was made there.`);
    expect(first.stderr).toContain("set BULKHEAD_DATA_DIR");
    const again = await bulkhead(["agent", "list"], env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).not.toContain("Note: there was no Bulkhead database");
  }, 240_000);
});
