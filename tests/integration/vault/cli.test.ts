import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { credentialCommand } from "@/cli/commands/credential";
import type { CliContext } from "@/cli/context";
import { CliError } from "@/cli/context";
import { parseMasterKey } from "@/lib/crypto/envelope";
import { deriveProcessKeys } from "@/lib/keys/process-keys";
import { loadCredentialsForInjection } from "@/lib/vault";
import { createTestDatabase, databaseEnv, type TestDatabase } from "../../support/database";
import { unique } from "../../support/factories";
import { leaks, randomSecret } from "./secret-search";

/** The worker's key for a master key: the CLI seals to it, only the worker opens. */
const workerKeyOf = (masterText: string) => deriveProcessKeys(parseMasterKey(masterText)).workerKey;

/** Runs `bulkhead credential ...` in-process (main.ts registers the same handler). */
async function run(argv: string[], options: { stdin?: string; env: Record<string, string | undefined> }) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const ctx: CliContext = {
    json: argv.includes("--json"),
    stdout: (l) => stdout.push(l),
    stderr: (l) => stderr.push(l),
    stdinIsTTY: options.stdin === undefined,
    readStdin: async () => options.stdin ?? "",
  };
  const saved = Object.fromEntries(Object.keys(options.env).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(options.env)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    const code = (await credentialCommand(argv.filter((a) => a !== "--json"), ctx)) ?? 0;
    return { code, stdout, stderr, error: undefined as CliError | Error | undefined };
  } catch (error) {
    return { code: error instanceof CliError ? error.exitCode : 1, stdout, stderr, error: error as Error };
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

describe("bulkhead credential", () => {
  let t: TestDatabase;
  let dataDir: string;
  const key = randomBytes(32).toString("base64url");
  const env = () => ({ ...databaseEnv(t), BULKHEAD_MASTER_KEY: key, BULKHEAD_DATA_DIR: dataDir });

  beforeAll(async () => {
    t = await createTestDatabase();
    dataDir = await mkdtemp(path.join(tmpdir(), "bulkhead-cli-vault-"));
  });
  afterAll(async () => {
    await t.drop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("adds a credential with the secret from stdin, and never prints it", async () => {
    const secret = randomSecret();
    const name = unique("cli-gh");
    const added = await run(["add", "--name", name, "--host", "API.GitHub.com", "--env", "*", "--header", "Authorization: Bearer {secret}", "--json"], { stdin: `${secret}\n`, env: env() });
    expect(added.error).toBeUndefined();
    expect(added.code).toBe(0);
    const out = JSON.parse(added.stdout[0]!);
    expect(out).toMatchObject({ name, service: "https://api.github.com:443", secret: "••••" });
    expect(leaks([...added.stdout, ...added.stderr].join("\n"), secret)).toEqual([]);
    // The trailing newline from `echo` was dropped, and the database holds only the sealed form.
    const injected = (await loadCredentialsForInjection(t.db, workerKeyOf(key))).get("https://api.github.com:443")!;
    expect(injected.headerValue).toBe(`Bearer ${secret}`);
    const [row] = await t.db.$queryRaw<Array<{ json: string }>>`SELECT row_to_json(c)::text AS json FROM credentials c WHERE name = ${name}`;
    expect(leaks(row!.json, secret)).toEqual([]);
    expect(await t.db.auditEvent.count({ where: { type: "credential.added", actorType: "system", actorId: "cli" } })).toBe(1);
  });

  it("lists, rotates (stdin) and deletes", async () => {
    const name = unique("cli-rot");
    const added = await run(["add", "--name", name, "--host", "registry.example.test", "--scheme", "http", "--port", "5000", "--env", "*", "--header", "Authorization: Basic {secret:base64}", "--json"], {
      stdin: "robot:first-password",
      env: env(),
    });
    const { id } = JSON.parse(added.stdout[0]!) as { id: string };
    const list = await run(["list"], { env: env() });
    expect(list.stdout.join("\n")).toContain(`${id}  ${name}  http://registry.example.test:5000  unknown in *  Authorization: Basic {secret:base64}`);
    const rotated = await run(["rotate", id], { stdin: "robot:second-password\r\n", env: env() });
    expect(rotated.stdout).toEqual([`Rotated credential ${name}.`]);
    const injected = (await loadCredentialsForInjection(t.db, workerKeyOf(key))).get("http://registry.example.test:5000")!;
    expect(injected.headerValue).toBe(`Basic ${Buffer.from("robot:second-password").toString("base64")}`);
    const deleted = await run(["delete", id, "--json"], { env: env() });
    expect(JSON.parse(deleted.stdout[0]!)).toMatchObject({ id, name });
    expect(await t.db.credential.count({ where: { id } })).toBe(0);
  });

  it("refuses a secret from a terminal, an empty secret, and a secret in a flag", async () => {
    const base = ["add", "--name", unique("x"), "--host", "x.example.test", "--env", "*", "--header", "X-Key: {secret}"];
    const tty = await run(base, { env: env() });
    expect(tty.code).toBe(2);
    expect(tty.error?.message).toMatch(/refusing to read the secret from a terminal: pipe it on stdin/);
    const empty = await run(base, { stdin: "\n", env: env() });
    expect(empty.code).toBe(2);
    expect(empty.error?.message).toMatch(/the secret on stdin is empty/);
    const flag = await run([...base, "--secret", "hunter2"], { stdin: "x", env: env() });
    expect(flag.code).toBe(2);
    expect(flag.error?.message).toMatch(/Unknown option '--secret'/);
    const rotateTty = await run(["rotate", "00000000-0000-4000-8000-000000000000"], { env: env() });
    expect(rotateTty.error?.message).toMatch(/refusing to read the secret from a terminal/);
    expect(await t.db.credential.count({ where: { host: "x.example.test" } })).toBe(0);
  });

  it("reports validation errors without the secret", async () => {
    const secret = `${randomSecret()}\r\nX-Admin: yes`;
    const bad = await run(["add", "--name", unique("bad"), "--host", "user@evil.test", "--env", "*", "--header", "Host: {secret}"], { stdin: secret, env: env() });
    expect(bad.code).toBe(1);
    const message = bad.error?.message ?? "";
    expect(message).toMatch(/user information/);
    expect(message).toMatch(/may not set the Host header/);
    expect(leaks(message, secret.slice(0, 40))).toEqual([]);
  });

  it("uses the data folder's key file when BULKHEAD_MASTER_KEY is unset, and refuses a different key afterwards", async () => {
    const t2 = await createTestDatabase();
    const dir = await mkdtemp(path.join(tmpdir(), "bulkhead-cli-key-"));
    try {
      const fromFile = { ...databaseEnv(t2), BULKHEAD_MASTER_KEY: undefined, BULKHEAD_DATA_DIR: dir };
      const first = await run(["add", "--name", unique("f"), "--host", "f.example.test", "--env", "*", "--header", "X-Key: {secret}"], { stdin: "s3cret", env: fromFile });
      expect(first.error).toBeUndefined();
      const fileKey = parseMasterKey(await readFile(path.join(dir, "master.key"), "utf8"));
      expect((await loadCredentialsForInjection(t2.db, deriveProcessKeys(fileKey).workerKey)).size).toBe(1);
      const other = await run(["add", "--name", unique("g"), "--host", "g.example.test", "--env", "*", "--header", "X-Key: {secret}"], {
        stdin: "s3cret",
        env: { ...fromFile, BULKHEAD_MASTER_KEY: randomBytes(32).toString("hex") },
      });
      expect(other.code).toBe(1);
      expect(other.error?.message).toMatch(/not the one that encrypted this database's secrets/);
      expect(await t2.db.credential.count()).toBe(1);
    } finally {
      await t2.drop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("prints usage for unknown subcommands", async () => {
    const res = await run(["show", "x"], { env: env() });
    expect(res.code).toBe(2);
    expect(res.error?.message).toMatch(/^usage: bulkhead credential add/);
  });
});
