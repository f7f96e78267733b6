import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, databaseEnv, type TestDatabase } from "../../support/database";
import { runCli } from "../../support/cli";
import { makeUser, unique } from "../../support/factories";

const BIN = path.resolve("bin/bulkhead.mjs");

/**
 * An argument that is not UTF-8 (`--purpose $'caf\xe9'` from a Latin-1 terminal or script) is
 * refused naming it: Node reads the command line with U+FFFD for each byte it cannot decode, and
 * the task was created with the purpose "caf\uFFFD", the byte lost, exit 0.
 */
describe("command-line arguments that are not UTF-8", () => {
  let t: TestDatabase;
  let dir: string;
  let agentId: string;

  beforeAll(async () => {
    t = await createTestDatabase();
    dir = mkdtempSync(path.join(tmpdir(), "bh-non-utf8-"));
    const admin = await makeUser(t.db, "admin");
    agentId = (await t.db.agent.create({ data: { name: unique("bytes"), ownerId: admin.user.id } })).id;
  });
  afterAll(async () => {
    await t.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("are refused by the shipped CLI, naming the flag, and nothing is created", async () => {
    // The byte 0xE9 (é in Latin-1) given by the shell, as a person's script would.
    const script = `exec "$NODE" "$BIN" task create --agent "$AGENT" --purpose "$(printf 'caf\\351 check')"`;
    const env: Record<string, string | undefined> = { PATH: process.env.PATH, HOME: dir, BULKHEAD_DATA_DIR: path.join(dir, "data"), NODE: process.execPath, BIN, AGENT: agentId, ...databaseEnv(t) };
    const run = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile("/bin/sh", ["-c", script], { cwd: dir, env: env as NodeJS.ProcessEnv }, (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }),
      );
    });
    expect(run).toMatchObject({ code: 2, stdout: "" });
    expect(run.stderr.trim()).toBe("bulkhead task: the value of --purpose is not valid UTF-8 text (the shell passed bytes UTF-8 cannot read, shown as \uFFFD); give it in UTF-8, nothing was done");
    expect(await t.db.task.count({ where: { agentId } })).toBe(0);
  }, 60_000);

  it("names a --flag=value, a positional, and an argument of the command a sandbox would run", async () => {
    const cli = (argv: string[]) => runCli(argv, { database: t });
    expect((await cli(["agent", "create", "--name=x\uFFFDy"])).stderr).toEqual([expect.stringMatching(/^bulkhead agent: the value of --name is not valid UTF-8 text/)]);
    expect((await cli(["task", "end", "\uFFFD"])).stderr).toEqual([expect.stringMatching(/^bulkhead task: argument 3 \("\uFFFD"\) is not valid UTF-8 text/)]);
    const sandbox = await cli(["sandbox", "run", "--task", "00000000-0000-4000-8000-000000000000", "--", "cat", "caf\uFFFD.txt"]);
    expect(sandbox.code).toBe(2);
    expect(sandbox.stderr).toEqual([expect.stringMatching(/^bulkhead sandbox: argument 7 \("caf\uFFFD\.txt"\) is not valid UTF-8 text/)]);
    // Text in UTF-8, accents included, is taken as it is.
    const ok = await cli(["task", "create", "--agent", agentId, "--purpose", "café check ✓"]);
    expect(ok.code).toBe(0);
    expect((await t.db.task.findFirstOrThrow({ where: { agentId } })).purpose).toBe("café check ✓");
  });
});
