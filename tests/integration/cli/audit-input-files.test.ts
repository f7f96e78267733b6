import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateMasterKey } from "@/lib/crypto/envelope";
import { createTestDatabase, databaseEnv, type TestDatabase } from "../../support/database";
import { runCompiledCli } from "../../support/compiled-cli";

/**
 * The files an operator hands the audit commands (`audit verify --trusted`, `--keys` of
 * `verify-report` and `verify-archive`), through the real compiled CLI. A missing or wrong file
 * printed a bare "ENOENT: no such file or directory", a JSON parser's "Unexpected token", a list
 * of schema paths ("seq: Invalid input; hash: …") or, for a missing --keys file, that it "is not
 * the JSON of" the keys document; and `--trusted` refused the very file the signer publishes
 * (checkpoint-*.json, pretty-printed), because it read a file that is not an array line by line.
 */
describe("the audit commands' input files", () => {
  let t: TestDatabase;
  let dir: string;
  let env: Record<string, string | undefined>;
  const bulkhead = (args: string[]) => runCompiledCli(args, { cwd: dir, env });

  beforeAll(async () => {
    t = await createTestDatabase();
    dir = mkdtempSync(path.join(tmpdir(), "bh-audit-files-"));
    env = { PATH: process.env.PATH, HOME: dir, BULKHEAD_DATA_DIR: path.join(dir, "data"), BULKHEAD_MASTER_KEY: generateMasterKey(), ...databaseEnv(t) };
  });
  afterAll(async () => {
    await t.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("audit verify --trusted takes a published checkpoint file as it is, and names the flag, the file and the entry when it cannot", async () => {
    expect((await bulkhead(["keys", "rotate"])).code).toBe(0); // events to sign
    const signed = await bulkhead(["audit", "checkpoint", "--json"]);
    expect(signed.code, signed.stderr).toBe(0);
    // The file the signer published (pretty-printed JSON), copied elsewhere, is a trusted copy.
    const published = (JSON.parse(signed.stdout) as { location: string }).location;
    expect(readFileSync(published, "utf8").split("\n").length).toBeGreaterThan(3);
    copyFileSync(published, path.join(dir, "kept.json"));
    const kept = await bulkhead(["audit", "verify", "--no-outside", "--trusted", "kept.json"]);
    expect(kept.stderr).toBe("");
    expect(kept.code).toBe(0);
    expect(kept.stdout).toMatch(/^Audit chain OK: /);
    // As `audit checkpoint --json` prints them, one per line, still works.
    writeFileSync(path.join(dir, "lines.jsonl"), `${signed.stdout.trim()}\n${signed.stdout.trim()}\n`);
    expect((await bulkhead(["audit", "verify", "--no-outside", "--trusted", "lines.jsonl"])).code).toBe(0);

    writeFileSync(path.join(dir, "garbage.txt"), "garbage\n");
    writeFileSync(path.join(dir, "keys.json"), JSON.stringify({ keys: [] }));
    writeFileSync(path.join(dir, "second-line.jsonl"), `${signed.stdout.trim()}\nnot json\n`);
    const refused: Array<[string[], RegExp]> = [
      [["--trusted", "missing.json"], /^bulkhead audit: --trusted missing\.json does not exist$/],
      [["--trusted", "garbage.txt"], /^bulkhead audit: --trusted garbage\.txt: line 1 is not JSON; the file must be a published checkpoint file/],
      [["--trusted", "second-line.jsonl"], /^bulkhead audit: --trusted second-line\.jsonl: line 2 is not JSON/],
      [["--trusted", "keys.json"], /^bulkhead audit: --trusted keys\.json: its checkpoint is not a checkpoint \(seq, hash, keyId, signature missing or malformed\)/],
      [["--key", "nope"], /^bulkhead audit: --key must be KEY_ID:PUBLIC_KEY as printed by `bulkhead audit key`$/],
    ];
    for (const [flags, message] of refused) {
      const r = await bulkhead(["audit", "verify", ...flags]);
      expect(r.code, flags.join(" ")).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr.trim().split("\n"), flags.join(" ")).toEqual([expect.stringMatching(message)]);
    }
  }, 120_000);

  /** `audit export --output` into a folder that does not exist crashed with an unhandled stream 'error' and a stack trace. */
  it("audit export refuses an --output it cannot write in one line, and refused input leaves an existing file alone", async () => {
    const missing = path.join(dir, "no-such-folder", "audit.csv");
    const r = await bulkhead(["audit", "export", "--output", missing]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toEqual([`bulkhead audit: cannot write --output ${missing}: the folder ${path.dirname(missing)} does not exist`]);
    const folder = await bulkhead(["audit", "export", "--output", dir]);
    expect(folder.code).toBe(2);
    expect(folder.stderr.trim()).toBe(`bulkhead audit: cannot write --output ${dir}: it is a folder`);

    writeFileSync(path.join(dir, "kept.csv"), "an earlier export\n");
    const bad = await bulkhead(["audit", "export", "--format", "xml", "--output", "kept.csv"]);
    expect(bad.code).not.toBe(0);
    // The refused field is named (it was "input: format must be …").
    expect(bad.stderr.trim()).toBe("bulkhead audit: --format must be csv, jsonl or ocsf");
    expect(readFileSync(path.join(dir, "kept.csv"), "utf8")).toBe("an earlier export\n");
    const good = await bulkhead(["audit", "export", "--format", "jsonl", "--output", "kept.csv"]);
    expect(good.code, good.stderr).toBe(0);
    expect(good.stderr).toMatch(/^Exported the audit log as jsonl \(events up to seq \d+, [1-9]\d* bytes\) to kept\.csv: \d+ events?\.$/m);
    expect(readFileSync(path.join(dir, "kept.csv"), "utf8")).toMatch(/^\{"seq":/);
  }, 120_000);

  it("audit report refuses an --output it cannot write before generating (and auditing) a report", async () => {
    const missing = path.join(dir, "no-such-folder", "r.pdf");
    const r = await bulkhead(["audit", "report", "00000000-0000-0000-0000-000000000000", "--output", missing]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(`bulkhead audit: cannot write --output ${missing}: the folder ${path.dirname(missing)} does not exist`);
  }, 120_000);

  it("verify-report and verify-archive say a missing --keys file is missing", async () => {
    writeFileSync(path.join(dir, "r.pdf"), "%PDF-1.4\n");
    writeFileSync(path.join(dir, "r.pdf.sig"), "{}\n");
    writeFileSync(path.join(dir, "a.jsonl"), "{}\n");
    for (const args of [
      ["audit", "verify-report", "r.pdf", "--keys", "missing-keys.json"],
      ["audit", "verify-archive", "a.jsonl", "--keys", "missing-keys.json"],
    ]) {
      const r = await bulkhead(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr.trim(), args.join(" ")).toBe("bulkhead audit: --keys missing-keys.json does not exist (save /.well-known/bulkhead-audit-keys.json to it)");
    }
    writeFileSync(path.join(dir, "bad-keys.json"), "not json");
    const bad = await bulkhead(["audit", "verify-report", "r.pdf", "--keys", "bad-keys.json"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe("bulkhead audit: --keys bad-keys.json is not the JSON of /.well-known/bulkhead-audit-keys.json");
  }, 120_000);

  it("verify-archive says a file that is not an archive is not one, and a missing manifest is missing", async () => {
    writeFileSync(path.join(dir, "export.csv"), "seq,at,type\n1,2026-12-01T00:00:00Z,proxy.decision\n");
    const r = await bulkhead(["audit", "verify-archive", "export.csv"]);
    expect(r.code).toBe(1);
    const lines = (r.stdout + r.stderr).trim().split("\n").map((l) => l.trim());
    expect(lines).toContain("export.csv is not a Bulkhead audit archive: it does not start with an archive header (archives are the files bulkhead audit archive writes, with a .manifest.json beside each)");
    expect(lines).toContain("there is no manifest at export.csv.manifest.json (an archive is written with its manifest beside it; --manifest FILE names another)");
    expect(r.stdout + r.stderr).not.toContain("ENOENT");
  }, 120_000);
});
