import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { authenticateLocal } from "@/lib/auth/authenticate";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { runCli } from "../../support/cli";
import { unique } from "../../support/factories";

describe("bulkhead CLI", () => {
  let t: TestDatabase;
  const cli = (argv: string[], stdin?: string) => runCli(argv, { database: t, stdin });

  beforeAll(async () => {
    t = await createTestDatabase({ migrate: false });
  });
  afterAll(() => t.drop());

  it("db migrate applies and then reports up to date", async () => {
    const first = await cli(["db", "migrate", "--json"]);
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout[0]!).applied.length).toBeGreaterThan(0);
    const second = await cli(["db", "migrate"]);
    expect(second.stdout[0]).toMatch(/^Database is up to date/);
  });

  it("user create reads the password from stdin, or generates one", async () => {
    const email = `${unique("ops")}@example.test`;
    const piped = await cli(["user", "create", "--email", email, "--role", "admin", "--json"], "a long enough password\n");
    expect(piped.code).toBe(0);
    const out = JSON.parse(piped.stdout[0]!);
    expect(out).toMatchObject({ email, role: "admin", password: null });
    expect(await authenticateLocal(t.db, email, "a long enough password")).toBe(out.id);

    const generated = await cli(["user", "create", "--email", `${unique("aud")}@example.test`, "--role", "auditor"]);
    expect(generated.code).toBe(0);
    expect(generated.stdout[1]).toMatch(/^Password \(shown once\): \S{24}$/);
  });

  it("agent create, list and suspend, with --json", async () => {
    const name = unique("cli-agent");
    const created = await cli(["agent", "create", "--name", name, "--description", "from the CLI", "--json"]);
    expect(created.code, created.stderr.join()).toBe(0);
    const agent = JSON.parse(created.stdout[0]!);
    expect(agent).toMatchObject({ name, status: "active", description: "from the CLI" });

    const list = await cli(["agent", "list", "--query", name, "--json"]);
    expect(JSON.parse(list.stdout[0]!)).toEqual([expect.objectContaining({ id: agent.id })]);

    const suspended = await cli(["agent", "suspend", agent.id, "--json"]);
    expect(JSON.parse(suspended.stdout[0]!).status).toBe("suspended");
    const text = await cli(["agent", "list", "--query", name]);
    expect(text.stdout[0]).toContain("suspended");
  });

  it("commands that name an agent take its name as well as its id", async () => {
    const name = unique("by-name");
    const agent = JSON.parse((await cli(["agent", "create", "--name", name, "--json"])).stdout[0]!) as { id: string };
    const task = await cli(["task", "create", "--agent", name, "--purpose", "named", "--scope", "none", "--json"]);
    expect(task.code, task.stderr.join()).toBe(0);
    expect(JSON.parse(task.stdout[0]!)).toMatchObject({ agentId: agent.id });
    const listed = await cli(["task", "list", "--agent", name, "--json"]);
    expect((JSON.parse(listed.stdout[0]!) as Array<{ agentId: string }>).map((x) => x.agentId)).toEqual([agent.id]);
    const suspended = await cli(["agent", "suspend", name, "--json"]);
    expect(JSON.parse(suspended.stdout[0]!)).toMatchObject({ id: agent.id, status: "suspended" });
    expect(JSON.parse((await cli(["agent", "reactivate", agent.id, "--json"])).stdout[0]!)).toMatchObject({ status: "active" });
    // A name no agent has is refused like an id no agent has.
    for (const argv of [["agent", "suspend", `${name}-nope`], ["task", "create", "--agent", `${name}-nope`, "--purpose", "x", "--scope", "none"]]) {
      const run = await cli(argv);
      expect(run.code, argv.join(" ")).toBe(1);
      expect(run.stderr[0], argv.join(" ")).toMatch(/No such agent: none has the id or name ".*-nope"/);
    }
  });

  it("fails with a non-zero exit and one line on stderr", async () => {
    const cases: Array<[string[], RegExp, number]> = [
      [["agent", "create"], /--name is required/, 2],
      [["agent", "create", "--name", "x", "--bogus"], /Unknown option '--bogus'/, 2],
      [["user", "create", "--email", "a@example.test", "--role", "root"], /--role must be one of admin, approver, auditor/, 2],
      [["agent", "suspend", "not-an-id"], /No such agent/, 1],
      [["frobnicate"], /unknown command "frobnicate"/, 2],
      [["user", "create", "--email", "not-an-email", "--role", "admin"], /Enter a valid email address/, 1],
    ];
    for (const [argv, message, code] of cases) {
      const run = await cli(argv);
      expect(run.code, argv.join(" ")).toBe(code);
      expect(run.stderr).toHaveLength(1);
      expect(run.stderr[0]).toMatch(message);
    }
  });

  it("refuses a file or stdin it could not store as written (NUL, a lone UTF-16 half, bytes that are not UTF-8), naming the input, and stores nothing", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "bulkhead-cli-input-"));
    try {
      const agent = JSON.parse((await cli(["agent", "create", "--name", unique("input"), "--json"])).stdout[0]!) as { id: string };
      const files = {
        nul: ["rules: []\n# \0\n", /--policy .*nul\.yaml must not contain NUL characters/],
        // A UTF-16 half encoded on its own (CESU-style bytes) is not UTF-8 either.
        half: [Buffer.concat([Buffer.from("rules: []\n# "), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from("\n")]), /--policy .*half\.yaml is not valid UTF-8 text/],
        latin1: [Buffer.from("rules: []\n# caf\xe9\n", "latin1"), /--policy .*latin1\.yaml is not valid UTF-8 text/],
      } as const;
      for (const [name, [content, message]] of Object.entries(files)) {
        const file = path.join(dir, `${name}.yaml`);
        writeFileSync(file, content);
        const run = await cli(["task", "create", "--agent", agent.id, "--purpose", `input ${name}`, "--scope", "none", "--policy", file]);
        expect(run.code, name).toBe(2);
        expect(run.stderr, name).toHaveLength(1);
        expect(run.stderr[0], name).toMatch(message);
        const checked = await cli(["policy", "check", "--task", "00000000-0000-4000-8000-000000000000", file]);
        expect(checked.stderr[0], name).toMatch(message.source.startsWith("--policy ") ? new RegExp(message.source.slice("--policy ".length)) : message);
      }
      expect(await t.db.task.count({ where: { agentId: agent.id } })).toBe(0);

      const secret = await cli(["credential", "add", "--name", unique("nul"), "--host", "nul.example.test", "--env", "staging", "--header", "Authorization: Bearer {secret}"], "sk_\0live");
      expect(secret.code).toBe(2);
      expect(secret.stderr[0]).toMatch(/the secret on stdin must not contain NUL characters/);
      const password = await cli(["user", "create", "--email", `${unique("nul")}@example.test`, "--role", "auditor"], "a long enough\0password");
      expect(password.code).toBe(2);
      expect(password.stderr[0]).toMatch(/the password on stdin must not contain NUL characters/);
      expect(await t.db.credential.count({ where: { host: "nul.example.test" } })).toBe(0);

      // A typo in --env is accepted as a name, and said at once: nothing places an action there.
      const typo = await cli(["credential", "add", "--name", unique("typo"), "--host", "typo.example.test", "--env", "prodution", "--header", "Authorization: Bearer {secret}"], "sk_live_typo_123");
      expect(typo.code, typo.stderr.join("\n")).toBe(0);
      expect(typo.stderr.join("\n")).toMatch(/warning: credential .*serves "prodution", which no inventory entry or service names/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("with --json, prints every error as one JSON object on stderr, and nothing on stdout", async () => {
    const cases: Array<[string[], string, RegExp, number]> = [
      [["agent", "create"], "usage", /--name is required/, 2],
      [["agent", "create", "--name", "x", "--bogus"], "usage", /Unknown option '--bogus'/, 2],
      [["agent", "suspend", "not-an-id"], "not_found", /No such agent/, 1],
      [["frobnicate"], "usage", /unknown command "frobnicate"/, 2],
      [[], "usage", /no command given/, 2],
      [["user", "create", "--email", "not-an-email", "--role", "admin"], "invalid_input", /Enter a valid email address/, 1],
    ];
    for (const [argv, code, message, exitCode] of cases) {
      const run = await cli([...argv, "--json"]);
      expect(run.code, argv.join(" ")).toBe(exitCode);
      expect(run.stdout, argv.join(" ")).toEqual([]);
      expect(run.stderr, argv.join(" ")).toHaveLength(1);
      const printed = JSON.parse(run.stderr[0]!) as { error: { code: string; message: string; exitCode: number } };
      expect(printed.error, argv.join(" ")).toMatchObject({ code, exitCode });
      expect(printed.error.message, argv.join(" ")).toMatch(message);
    }
  });

  it("with --json, a configuration error lists the problems and never the values", async () => {
    const bad = "mysql://bulkhead:Sup3rSecretPw@db.internal/bulkhead";
    const run = await runCli(["agent", "list", "--json"], { database: { url: bad, workerUrl: bad, ownerUrl: bad } });
    expect(run.code).toBe(1);
    expect(run.stderr).toHaveLength(1);
    expect(run.stderr[0]).not.toContain("Sup3rSecretPw");
    const printed = JSON.parse(run.stderr[0]!) as { error: { code: string; problems: string[] } };
    expect(printed.error.code).toBe("config");
    expect(printed.error.problems.join("\n")).toMatch(/DATABASE_URL must be a postgres/);
  });

  it("refuses a duplicate agent name without losing the first", async () => {
    const name = unique("dup");
    expect((await cli(["agent", "create", "--name", name])).code).toBe(0);
    const again = await cli(["agent", "create", "--name", name]);
    expect(again.code).toBe(1);
    expect(again.stderr[0]).toMatch(/already exists/);
    expect(await t.db.agent.count({ where: { name } })).toBe(1);
  });
});
