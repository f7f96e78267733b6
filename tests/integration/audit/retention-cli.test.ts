import { createHash } from "node:crypto";
import { readFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditCommand } from "@/cli/commands/audit";
import type { CliContext } from "@/cli/context";
import { generateMasterKey } from "@/lib/crypto/envelope";
import { createTestDatabase, databaseEnv, type TestDatabase } from "../../support/database";
import { withClient } from "./helpers";

describe("bulkhead audit retention / verify-archive", () => {
  let t: TestDatabase;
  let dir: string;
  const masterKey = generateMasterKey();

  async function cli(args: string[], extra: Record<string, string> = {}) {
    const stdout: string[] = [];
    const stderr: string[] = [];
    const ctx: CliContext = { json: args.includes("--json"), stdout: (l) => stdout.push(l), stderr: (l) => stderr.push(l), stdinIsTTY: true, readStdin: async () => "" };
    const env: Record<string, string> = { ...databaseEnv(t), BULKHEAD_MASTER_KEY: masterKey, BULKHEAD_DATA_DIR: dir, BULKHEAD_AUDIT_RETENTION_DAYS: "", ...extra };
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    Object.assign(process.env, env);
    try {
      const code = (await auditCommand(args.filter((a) => a !== "--json"), ctx)) ?? 0;
      return { code, stdout, stderr };
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  }
  const count = () => withClient(t.url, async (c) => Number((await c.query("SELECT count(*) AS n FROM audit_events")).rows[0].n));

  beforeAll(async () => {
    t = await createTestDatabase();
    dir = await mkdtemp(path.join(tmpdir(), "bh-retention-cli-"));
    await withClient(t.url, async (c) => {
      for (let i = 0; i < 5; i++) await c.query("INSERT INTO audit_events (at, type, actor_type, actor_id) VALUES (now() - interval '100 days', 'cli.old', 'system', 'cli')");
    });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
    await t.drop();
  });

  it("is off by default, dry-runs, removes through the published checkpoint as the owner, and the archive verifies offline", async () => {
    expect((await cli(["checkpoint", "--json"])).code).toBe(0); // checkpoint 1 at seq 5
    await withClient(t.url, (c) => c.query("INSERT INTO audit_events (type, actor_type, actor_id) VALUES ('cli.new', 'system', 'cli')"));

    const off = await cli(["retention"]);
    expect(off).toMatchObject({ code: 0, stdout: [expect.stringMatching(/retention is off/)] });
    expect(await count()).toBe(6);

    const bad = cli(["retention"], { BULKHEAD_AUDIT_RETENTION_DAYS: "soon" });
    await expect(bad).rejects.toThrow(/BULKHEAD_AUDIT_RETENTION_DAYS/);

    const dry = await cli(["retention", "--dry-run", "--json"], { BULKHEAD_AUDIT_RETENTION_DAYS: "30" });
    expect(JSON.parse(dry.stdout[0]!)).toMatchObject({ dryRun: true, state: "planned", plan: { fromSeq: "1", throughSeq: "5", events: "5" } });
    expect(await count()).toBe(6);

    const done = await cli(["retention", "--json"], { BULKHEAD_AUDIT_RETENTION_DAYS: "30" });
    const result = JSON.parse(done.stdout[0]!);
    expect(result).toMatchObject({ state: "removed", removed: "5", archive: { file: path.join(dir, "audit-archive", "audit-00000000000000000001-00000000000000000005.jsonl") } });
    expect(await count()).toBe(2); // seq 6 and the audit.retention event

    const ok = await cli(["verify-archive", result.archive.file]);
    expect(ok.code).toBe(0);
    expect(ok.stdout[0]).toMatch(/^Archive OK: .* holds events 1-5 \(5\).* the manifest is signed by ack_[0-9a-f]{16}: its sha256 vouches for every byte/);
    const okJson = JSON.parse((await cli(["verify-archive", result.archive.file, "--json"])).stdout[0]!);
    expect(okJson).toMatchObject({ ok: true, manifestSigned: true, manifestKeyId: expect.stringMatching(/^ack_/), unsignedParts: [] });

    // recordedAt is not hashed: changed, with the manifest's digest recomputed, the manifest's signature fails.
    const text = await readFile(result.archive.file, "utf8");
    const manifest = JSON.parse(await readFile(`${result.archive.file}.manifest.json`, "utf8"));
    const save = async (name: string, body: string, m: object) => {
      const file = path.join(dir, name);
      await writeFile(file, body);
      await writeFile(`${file}.manifest.json`, JSON.stringify({ ...m, sha256: createHash("sha256").update(body).digest("hex"), size: Buffer.byteLength(body) }));
      return file;
    };
    const redated = await cli(["verify-archive", await save("redated.jsonl", text.replace(/"recordedAt":"[^"]*"/, '"recordedAt":"2020-01-01T00:00:00.000Z"'), manifest)]);
    expect(redated.code).toBe(1);
    expect(redated.stdout.join("\n")).toMatch(/NOT VERIFIED[\s\S]*the manifest's signature \(key ack_[0-9a-f]{16}\) does not verify/);

    // An archive of version 1 (unsigned manifest) still verifies, and the output says what only that manifest vouches for.
    const { keyId: _keyId, signature: _signature, ...unsigned } = manifest;
    const v1 = await save("v1.jsonl", text.replace('"version":2', '"version":1'), { ...unsigned, version: 1 });
    const older = await cli(["verify-archive", v1]);
    expect(older.code).toBe(0);
    expect(older.stdout.join("\n")).toMatch(/^Archive OK as far as signatures reach: .*Its manifest is NOT signed[\s\S]*id and recordedAt[\s\S]*a tail cut back to an earlier checkpoint/);
    const strict = await cli(["verify-archive", v1, "--require-signed-manifest"]);
    expect(strict.code).toBe(1);
    expect(strict.stdout.join("\n")).toMatch(/NOT VERIFIED[\s\S]*--require-signed-manifest/);
    const copy = path.join(dir, "copy.jsonl");
    await writeFile(copy, (await readFile(result.archive.file, "utf8")).replace('"cli.old"', '"cli.odd"'));
    await writeFile(`${copy}.manifest.json`, await readFile(`${result.archive.file}.manifest.json`));
    const broken = await cli(["verify-archive", copy]);
    expect(broken.code).toBe(1);
    expect(broken.stdout.join("\n")).toMatch(/NOT VERIFIED[\s\S]*the archive was changed/);

    const verify = await cli(["verify"]);
    expect(verify.code).toBe(0);
    expect(verify.stdout.join("\n")).toMatch(/Events before seq 6 were archived and removed by retention/);
  });
});
