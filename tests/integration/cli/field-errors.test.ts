import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { runCli } from "../../support/cli";
import { makeUser, unique } from "../../support/factories";

/**
 * A refusal that names what is wrong field by field (the dashboard shows it beside the field)
 * says the same on the command's one line and in --json: `task create --policy FILE` with a typo
 * in the file answered only "The policy is not valid.", with no line and no rule.
 */
describe("CLI errors carry what each field is refused for", () => {
  let t: TestDatabase;
  let dir: string;
  let agentId: string;
  const cli = (argv: string[], stdin?: string) => runCli(argv, { database: t, stdin });

  beforeAll(async () => {
    t = await createTestDatabase();
    dir = mkdtempSync(path.join(tmpdir(), "bh-field-errors-"));
    const admin = await makeUser(t.db, "admin");
    agentId = (await t.db.agent.create({ data: { name: unique("fields"), ownerId: admin.user.id } })).id;
  });
  afterAll(async () => {
    await t.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("task create with an invalid policy file names the line, the rule and the mistake", async () => {
    const file = path.join(dir, "typo.yaml");
    writeFileSync(file, "rules:\n  - id: read-github\n    service: githb\n    effects: [read]\n");
    const text = await cli(["task", "create", "--agent", agentId, "--purpose", "typo", "--policy", file]);
    expect(text.code).toBe(1);
    expect(text.stderr).toHaveLength(1);
    expect(text.stderr[0]).toMatch(/^bulkhead task: The policy is not valid: line 3: rules\[0\]\.service: .*service "githb" does not exist \(did you mean "github"\?\)/);

    const json = await cli(["task", "create", "--agent", agentId, "--purpose", "typo", "--policy", file, "--json"]);
    const { error } = JSON.parse(json.stderr[0]!);
    expect(error).toMatchObject({ code: "invalid_input", exitCode: 1 });
    expect(error.issues).toEqual([{ path: "policyYaml", message: expect.stringMatching(/^line 3: rules\[0\]\.service: /) }]);
  });

  it("a YAML syntax error is named with its line, on one line", async () => {
    const file = path.join(dir, "broken.yaml");
    writeFileSync(file, "rules: [\n  - service: github\n");
    const run = await cli(["task", "create", "--agent", agentId, "--purpose", "broken", "--policy", file]);
    expect(run.code).toBe(1);
    expect(run.stderr).toHaveLength(1);
    expect(run.stderr[0]).toMatch(/^bulkhead task: The policy is not valid: line \d+: /);
    expect(run.stderr[0]).not.toContain("\n");
  });

  it("a field message that the error's own already says is not said twice", async () => {
    const run = await cli(["task", "create", "--agent", agentId, "--purpose", "too long", "--ttl", "9h"]);
    expect(run.stderr).toEqual(["bulkhead task: The time to live must be between 1m and 8h (e.g. 15m, 2h)."]);
    await t.db.agent.update({ where: { id: agentId }, data: { status: "suspended" } });
    const suspended = await cli(["task", "create", "--agent", agentId, "--purpose", "suspended agent"]);
    expect(suspended.stderr).toEqual(["bulkhead task: The agent is suspended; reactivate it first."]);
    await t.db.agent.update({ where: { id: agentId }, data: { status: "active" } });
  });

  it("a time to live that is no duration is told so, not that it is out of range", async () => {
    for (const ttl of ["1h30m", "1e3", "PT30M", "30 minutes"]) {
      const run = await cli(["task", "create", "--agent", agentId, "--purpose", "odd ttl", "--ttl", ttl]);
      expect(run.code, ttl).toBe(1);
      expect(run.stderr).toEqual([`bulkhead task: The time to live "${ttl}" is not a duration: write a whole number and one unit, s, m, h or d (e.g. 90s, 15m, 2h), between 1m and 8h.`]);
    }
    // A number alone counts seconds: "30" is 30 seconds, too short, and the refusal says how it was read.
    const bare = await cli(["task", "create", "--agent", agentId, "--purpose", "bare ttl", "--ttl", "30"]);
    expect(bare.stderr).toEqual(["bulkhead task: The time to live must be between 1m and 8h (e.g. 15m, 2h); a number alone counts seconds (30s)."]);
    expect(await t.db.task.count({ where: { agentId, purpose: { in: ["odd ttl", "bare ttl"] } } })).toBe(0);
  });

  it("every refused field is named by its flag, and a message that starts with the field's name says it once", async () => {
    const from = await cli(["audit", "export", "--from", "2026-13-01"]);
    expect(from).toMatchObject({ code: 1, stdout: [] });
    expect(from.stderr).toEqual(["bulkhead audit: --from must be a date or an ISO 8601 time, e.g. 2026-12-01T09:30:00Z"]);
    const name = await cli(["agent", "create", "--name", "x"]);
    expect(name.stderr).toEqual(["bulkhead agent: --name: Name must be at least 2 characters."]);
  });

  it("an export filtered by a name no agent has says so, not only that nothing matched", async () => {
    const run = await cli(["audit", "export", "--agent", "no-such-agent", "--output", path.join(dir, "empty.csv")]);
    expect(run.code).toBe(0);
    expect(run.stderr.at(-1)).toBe("No event matched the filters: no agent has that name (--agent no-such-agent; bulkhead agent list and bulkhead user list show them).");
    const user = await cli(["audit", "export", "--user", "nobody@example.test", "--output", path.join(dir, "empty2.csv")]);
    expect(user.stderr.at(-1)).toBe("No event matched the filters: no user has that email (--user nobody@example.test; bulkhead agent list and bulkhead user list show them).");
  });

  it("an input the schema refuses is named by the flag that was typed, not by the schema's field", async () => {
    const short = await cli(["task", "create", "--agent", agentId, "--purpose", "ab"]);
    expect(short.stderr).toEqual(["bulkhead task: --purpose: Describe the purpose in a few words."]);
    // An agent is named by id or by name; a name no agent has is refused naming it.
    const byName = await cli(["task", "create", "--agent", "deploy-bot", "--purpose", "by name"]);
    expect(byName.stderr).toEqual(['bulkhead task: No such agent: none has the id or name "deploy-bot" (bulkhead agent list shows them).']);
    const header = await cli(["credential", "add", "--name", "gh", "--host", "api.github.com", "--env", "*", "--header", "Authorization: Bearer"], "token");
    // (The first command that seals anything in a fresh data folder may say it generated the master key before it.)
    expect(header.stderr.at(-1)).toMatch(/^bulkhead credential: --header: /);
    // --json keeps the field names for scripts.
    const json = await cli(["task", "create", "--agent", agentId, "--purpose", "ab", "--json"]);
    expect(JSON.parse(json.stderr[0]!).error.issues).toEqual([{ path: "purpose", message: "Describe the purpose in a few words." }]);
  });
});
