import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateMasterKey } from "@/lib/crypto/envelope";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { runCli } from "../../support/cli";
import { makeUser, unique } from "../../support/factories";

describe("bulkhead task / token / keys", () => {
  let t: TestDatabase;
  const masterKey = generateMasterKey();
  const cli = async (argv: string[]) => {
    const previous = process.env.BULKHEAD_MASTER_KEY;
    process.env.BULKHEAD_MASTER_KEY = masterKey;
    try {
      return await runCli(argv, { database: t });
    } finally {
      if (previous === undefined) delete process.env.BULKHEAD_MASTER_KEY;
      else process.env.BULKHEAD_MASTER_KEY = previous;
    }
  };

  beforeAll(async () => {
    t = await createTestDatabase();
    await makeUser(t.db, "admin");
  });
  afterAll(() => t.drop());

  it("creates a task, mints a token alone on stdout, verifies it, ends the task, and verify then fails", async () => {
    const agent = JSON.parse((await cli(["agent", "create", "--name", unique("cli"), "--json"])).stdout[0]!);
    const created = await cli(["task", "create", "--agent", agent.id, "--purpose", "cli task", "--ttl", "20m", "--json"]);
    expect(created.code, created.stderr.join()).toBe(0);
    const task = JSON.parse(created.stdout[0]!);

    const minted = await cli(["token", "mint", "--task", task.id]);
    expect(minted.code, minted.stderr.join()).toBe(0);
    expect(minted.stdout).toHaveLength(1);
    const token = minted.stdout[0]!;
    expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);

    const verified = await cli(["token", "verify", token]);
    expect(verified.code).toBe(0);
    expect(JSON.parse(verified.stdout[0]!)).toMatchObject({ sub: agent.id, task: task.id, aud: "bulkhead-proxy", iss: "bulkhead" });

    expect((await cli(["task", "end", task.id])).code).toBe(0);
    const after = await cli(["token", "verify", token]);
    expect(after.code).toBe(1);
    expect(after.stderr).toEqual(["bulkhead token: invalid token: task_revoked: task token's task has ended or was revoked"]);

    const tampered = await cli(["token", "verify", `${token.slice(0, -4)}AAAA`]);
    expect(tampered.code).toBe(1);
    expect(tampered.stderr).toEqual(["bulkhead token: invalid token: signature_invalid: task token signature is invalid"]);
    const garbage = await cli(["token", "verify", "not-a-token"]);
    expect(garbage.stderr).toEqual(["bulkhead token: invalid token: malformed: task token is malformed"]);
  });

  it("rotates keys and keeps old tokens valid", async () => {
    const agent = JSON.parse((await cli(["agent", "create", "--name", unique("rot"), "--json"])).stdout[0]!);
    const task = JSON.parse((await cli(["task", "create", "--agent", agent.id, "--purpose", "rotation", "--json"])).stdout[0]!);
    const old = (await cli(["token", "mint", "--task", task.id])).stdout[0]!;
    const rotated = await cli(["keys", "rotate", "--json"]);
    expect(rotated.code).toBe(0);
    const { kid } = JSON.parse(rotated.stdout[0]!);
    const fresh = JSON.parse((await cli(["token", "mint", "--task", task.id, "--json"])).stdout[0]!);
    expect(fresh.kid).toBe(kid);
    expect((await cli(["token", "verify", old])).code).toBe(0);
  });

  it("refuses bad input with one line", async () => {
    const r = await cli(["task", "create", "--agent", "nope", "--purpose", "x y z"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toHaveLength(1);
    const missing = await cli(["task", "create", "--agent", "00000000-0000-4000-8000-000000000000", "--purpose", "ghost"]);
    expect(missing.stderr[0]).toMatch(/No such agent/);
    const policy = await cli(["task", "create", "--agent", "00000000-0000-4000-8000-000000000000", "--purpose", "p q r", "--policy", "/nonexistent.yaml"]);
    expect(policy.stderr[0]).toMatch(/cannot read --policy \/nonexistent.yaml: ENOENT/);
  });
});
