import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { runCli } from "../../support/cli";
import { makeUser, unique } from "../../support/factories";

/**
 * A flag that takes one value, given twice, is refused by every command: node's parser kept the
 * last one silently, so `agent create --name a --name b` registered "b" and exited 0.
 */
describe("a flag taking one value given twice", () => {
  let t: TestDatabase;
  let dir: string;
  let owner: string;
  const cli = (argv: string[], stdin?: string) => runCli(argv, { database: t, stdin });

  beforeAll(async () => {
    t = await createTestDatabase();
    dir = mkdtempSync(path.join(tmpdir(), "bh-repeated-flags-"));
    owner = (await makeUser(t.db, "admin")).email;
  });
  afterAll(async () => {
    await t.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("is refused with exit 2, naming the flag and both values, and nothing is written", async () => {
    const first = unique("first");
    const second = unique("second");
    const run = await cli(["agent", "create", "--name", first, "--name", second, "--owner", owner]);
    expect(run).toMatchObject({ code: 2, stdout: [] });
    expect(run.stderr).toEqual([`bulkhead agent: --name is given more than once ("${first}", then "${second}"); give it once`]);
    expect(await t.db.agent.count({ where: { name: { in: [first, second] } } })).toBe(0);

    // The --flag=value form counts the same, and --json gives it as a usage error.
    const json = await cli(["agent", "create", `--name=${first}`, "--owner", owner, "--owner", owner, "--json"]);
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stderr[0]!).error).toMatchObject({ code: "usage", message: expect.stringMatching(/^--owner is given more than once/) });
    expect(await t.db.agent.count({ where: { name: first } })).toBe(0);
  });

  it("is refused by the commands that parse their own flags (policy check, policy explain)", async () => {
    const policy = path.join(dir, "policy.yaml");
    writeFileSync(policy, "rules:\n  - id: r\n    service: railway\n    effects: [read]\n");
    const explain = await cli(["policy", "explain", "--policy", policy, "--request", "GET https://backboard.railway.com/", "--request", "POST https://backboard.railway.com/", "--offline"]);
    expect(explain.code).toBe(2);
    expect(explain.stderr[0]).toMatch(/^bulkhead policy: --request is given more than once \("GET https:\/\/backboard\.railway\.com\/", then "POST https:\/\/backboard\.railway\.com\/"\); give it once/);
    const check = await cli(["policy", "check", policy, "--offline", "--inventory", policy, "--inventory", policy]);
    expect(check.code).toBe(2);
    expect(check.stderr[0]).toMatch(/^bulkhead policy: --inventory is given more than once/);
  });

  it("a long value is quoted cut short", async () => {
    const long = "x".repeat(5000);
    const run = await cli(["agent", "list", "--query", long, "--query", "y"]);
    expect(run.code).toBe(2);
    expect(run.stderr[0]!.length).toBeLessThan(200);
  });

  it("flags that repeat on purpose still do, and a repeated switch is the same switch", async () => {
    const name = unique("cred");
    const run = await cli(["credential", "add", "--name", name, "--host", "api.github.com", "--env", "staging", "--env", "production", "--header", "Authorization: Bearer {secret}"], "token");
    expect(run.code).toBe(0);
    expect(run.stdout.at(-1)).toMatch(/serving github in (staging, production|production, staging)/);
    const listed = await cli(["sandbox", "list", "--all", "--all"]);
    expect(listed.code).toBe(0);
  });
});
