import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCompiledCli } from "../../support/compiled-cli";

/**
 * A file named by a flag that cannot be read: `--body` said only "cannot read FILE" (no flag, no
 * reason) and `--policy` a bare error code ("ENOENT"). Both name the flag, the code and what it means.
 */
describe("input files the policy commands cannot read", () => {
  let dir: string;
  const bulkhead = (args: string[]) => runCompiledCli(args, { cwd: dir, env: { PATH: process.env.PATH, HOME: dir, BULKHEAD_DATA_DIR: path.join(dir, "data") } });

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), "bh-missing-files-"));
    writeFileSync(path.join(dir, "policy.yaml"), "unlisted: deny\nrules: []\n");
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("names the flag, the file and why", async () => {
    const cases: Array<[string[], string]> = [
      [["policy", "explain", "--offline", "--policy", "policy.yaml", "--request", "GET https://api.github.com/user", "--body", "missing.json"], "bulkhead policy: cannot read --body missing.json: ENOENT (no such file)"],
      [["policy", "explain", "--offline", "--policy", "missing.yaml", "--request", "GET https://api.github.com/user"], "bulkhead policy: cannot read --policy missing.yaml: ENOENT (no such file)"],
      [["policy", "check", "--offline", dir], `bulkhead policy: cannot read ${dir}: EISDIR (it is a folder)`],
    ];
    for (const [args, line] of cases) {
      const r = await bulkhead(args);
      expect(r.code, args.join(" ")).not.toBe(0);
      expect(r.stderr.trim(), args.join(" ")).toBe(line);
    }
  }, 120_000);

  /**
   * The Services & Credentials page takes one descriptor per document, `--services` a file of
   * them (`services: [...]`). One descriptor given to --services was refused with schema paths
   * ("services file.services: Invalid input: expected array, received undefined; services file:
   * Unrecognized keys: …"); it is now said in those words.
   */
  it("explains a single service descriptor given where a services file was expected", async () => {
    writeFileSync(path.join(dir, "one-service.yaml"), "id: demo\nhosts: [api.demo.example.com]\nprotocol: rest\n");
    const r = await bulkhead(["policy", "check", "--offline", "policy.yaml", "--services", "one-service.yaml"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim()).toBe("bulkhead policy: one-service.yaml: services file: this is one service descriptor; a services file lists them under `services:` (services: [ {id: …, hosts: …}, … ])");
    writeFileSync(path.join(dir, "services.yaml"), "services:\n  - id: demo\n    hosts: [api.demo.example.com]\n    protocol: rest\n");
    const ok = await bulkhead(["policy", "check", "--offline", "policy.yaml", "--services", "services.yaml"]);
    expect(ok.code, ok.stderr).toBe(0);
  }, 120_000);
});
