import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { runCli } from "../../support/cli";
import { makeUser, unique } from "../../support/factories";

/**
 * The CLI registers agents as the system, so it picks the owner itself only when exactly one
 * active admin exists. With none (a fresh install whose setup link was not used yet) or several
 * (most deployments), the refusal must say how to name one, and nothing may be registered.
 */
describe("bulkhead agent create / sandbox verify: who owns an agent the CLI registers", () => {
  let t: TestDatabase;
  const cli = (argv: string[]) => runCli(argv, { database: t });
  const agents = () => t.db.agent.count();

  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(() => t.drop());

  it("with no admin yet: says how to create one or name an owner, and registers nothing", async () => {
    const approver = await makeUser(t.db, "approver");
    const before = await agents();
    const r = await cli(["agent", "create", "--name", unique("bot")]);
    expect(r.code).toBe(1);
    expect(r.stderr.join("\n")).toMatch(/No active admin exists yet to own the agent\..*bulkhead user create --email EMAIL --role admin.*--owner EMAIL/);
    expect(await agents()).toBe(before);
    const json = await cli(["agent", "create", "--name", unique("bot"), "--json"]);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stderr[0]!).error).toMatchObject({ code: "invalid_input", message: expect.stringContaining("--owner EMAIL") });

    // Any active user may own an agent when named.
    const named = await cli(["agent", "create", "--name", unique("bot"), "--owner", approver.user.email, "--json"]);
    expect(named.code, named.stderr.join()).toBe(0);
    expect(JSON.parse(named.stdout[0]!).owner).toBe(approver.user.email);
  });

  it("with one admin: that admin owns it; with several: the owner must be named", async () => {
    const first = await makeUser(t.db, "admin");
    const one = await cli(["agent", "create", "--name", unique("bot"), "--json"]);
    expect(one.code, one.stderr.join()).toBe(0);
    expect(JSON.parse(one.stdout[0]!).owner).toBe(first.user.email);

    const second = await makeUser(t.db, "admin");
    const before = await agents();
    const several = await cli(["agent", "create", "--name", unique("bot")]);
    expect(several.code).toBe(1);
    expect(several.stderr.join("\n")).toContain("Several admins could own the agent: pass --owner EMAIL naming its owner.");
    expect(await agents()).toBe(before);
    const named = await cli(["agent", "create", "--name", unique("bot"), "--owner", second.user.email, "--json"]);
    expect(named.code, named.stderr.join()).toBe(0);
    expect(JSON.parse(named.stdout[0]!).owner).toBe(second.user.email);

    // An unknown or disabled owner is refused by name, as before.
    const unknown = await cli(["agent", "create", "--name", unique("bot"), "--owner", "nobody@example.test"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr.join("\n")).toContain("No active user with email nobody@example.test.");
  });

  it("sandbox verify takes --owner for its self-test agent, and refuses it beside --task", async () => {
    const both = await cli(["sandbox", "verify", "--task", "00000000-0000-4000-8000-000000000000", "--owner", "a@example.test"]);
    expect(both.code).toBe(2);
    expect(both.stderr.join("\n")).toContain("give one of them");
    const unknown = await cli(["sandbox", "help"]);
    expect(unknown.stdout.join("\n") + unknown.stderr.join("\n")).toContain("sandbox verify [--task ID | --owner EMAIL]");
  });
});
