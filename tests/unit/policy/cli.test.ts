import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CliError, type CliContext } from "@/cli/context";
import { policyCommand } from "@/cli/commands/policy";

function context(json = false) {
  const out: string[] = [];
  const err: string[] = [];
  const ctx: CliContext = {
    json,
    stdout: (line) => out.push(line),
    stderr: (line) => err.push(line),
    readStdin: async () => "",
    stdinIsTTY: true,
  };
  return { ctx, out, err };
}

const dir = mkdtempSync(join(tmpdir(), "bulkhead-policy-cli-"));
function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

const good = file("good.yaml", "rules:\n  - id: staging-read\n    service: railway\n    environments: [staging]\n    effects: [read]\n");
const bad = file("bad.yaml", "rules:\n  - id: a\n    service: railway\n    effects: [read, delete]\n");
const inventory = file("inventory.yaml", "entries:\n  - environment: production\n    service: railway\n    resources: [vol_123]\n  - environment: staging\n    service: railway\n    resources: [vol_stg]\n");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const body = file("body.json", JSON.stringify({ query: 'mutation { volumeDelete(volumeId: "vol_123") }' }));

describe("bulkhead policy check", () => {
  it("accepts a valid file", async () => {
    const { ctx, out } = context();
    expect(await policyCommand(["check", good, "--offline", "--inventory", inventory], ctx)).toBe(0);
    expect(out).toEqual([`${good}: ok (1 rule, mode enforce, unlisted deny)`]);
  });
  it("prints FILE:LINE: path: message and exits 1", async () => {
    const { ctx, err } = context();
    expect(await policyCommand(["check", bad, "--offline"], ctx)).toBe(1);
    expect(err).toEqual([
      `${bad}:4: rules[0].effects[1]: in rule "a": "delete" is not allowed here: expected one of read, write, destructive, irreversible`,
    ]);
  });
  it("JSON output when asked", async () => {
    const { ctx, out } = context(true);
    expect(await policyCommand(["check", bad, "--offline"], ctx)).toBe(1);
    expect(JSON.parse(out[0] ?? "{}")).toMatchObject({ ok: false, errors: [{ path: "rules[0].effects[1]", line: 4 }] });
  });
  it("a missing file is a CLI error", async () => {
    const { ctx } = context();
    await expect(policyCommand(["check", join(dir, "nope.yaml"), "--offline"], ctx)).rejects.toThrow(/cannot read/);
  });
  it("usage errors exit 2", async () => {
    const { ctx } = context();
    await expect(policyCommand(["check"], ctx)).rejects.toMatchObject({ exitCode: 2 });
    await expect(policyCommand(["frobnicate"], ctx)).rejects.toBeInstanceOf(CliError);
  });
});

describe("bulkhead policy check: names must exist (offline: built-ins and the given files)", () => {
  const typos = file(
    "typos.yaml",
    "rules:\n  - id: no-prod-delete\n    service: railwy\n    decision: deny\n  - id: staging\n    service: railway\n    environments: [stagng]\n    effects: [read]\n  - id: ops\n    service: railway\n    operations: [volumDelete]\n    decision: deny\n",
  );
  it("a typo in a service, environment or operation is an error with a hint, on its line", async () => {
    const { ctx, err } = context();
    expect(await policyCommand(["check", typos, "--offline", "--inventory", inventory], ctx)).toBe(1);
    expect(err[0]).toMatch(new RegExp(`^${typos.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:3: rules\\[0\\]\\.service: in rule "no-prod-delete": service "railwy" does not exist \\(did you mean "railway"\\?\\)`));
    expect(err[1]).toMatch(/:7: rules\[1\]\.environments\[0\]: .*environment "stagng" does not exist \(did you mean "staging"\?\)/);
    expect(err[2]).toMatch(/:11: rules\[2\]\.operations\[0\]: .*operation "volumDelete" is not an operation of service railway \(did you mean "volumeDelete"\?\)/);
  });
  it("--services and --inventory belong to --offline", async () => {
    const { ctx } = context();
    await expect(policyCommand(["check", good, "--inventory", inventory], ctx)).rejects.toMatchObject({ exitCode: 2 });
  });
});

describe("bulkhead policy explain", () => {
  it("takes --now only as an ISO 8601 date-time with its zone, never as whatever Date.parse makes of it", async () => {
    const expiring = file("expiring.yaml", "rules:\n  - id: until-2026\n    service: railway\n    effects: [read]\n    expires_at: 2026-06-01T00:00:00Z\n");
    const explain = (now: string) => policyCommand(["explain", "--policy", expiring, "--request", "GET https://backboard.railway.com/", "--offline", "--now", now], context().ctx);
    // "5" was 1 May 2001 and "Dec 5" 5 December 2001 (the rule applied), 2026-02-30 was 2 March.
    for (const now of ["5", "Dec 5", "2026-02-30T00:00:00Z", "12/05/2026", "2026-12-05 10:00"]) {
      await expect(explain(now), now).rejects.toMatchObject({ exitCode: 2, message: `--now must be an ISO 8601 date-time with its zone, such as 2026-12-05T09:30:00Z, not "${now}"` });
    }
    const { ctx, out } = context(true);
    expect(await policyCommand(["explain", "--policy", expiring, "--request", "GET https://backboard.railway.com/", "--offline", "--now", "2026-07-01T00:00:00+02:00", "--json"], ctx)).toBe(0);
    expect(JSON.parse(out.join("\n"))).toMatchObject({ decision: "deny" });
  });
  it("explains the PocketOS incident", async () => {
    const { ctx, out } = context();
    const code = await policyCommand(
      ["explain", "--policy", good, "--request", "POST https://backboard.railway.com/graphql/v2", "--body", body, "--offline", "--inventory", inventory],
      ctx,
    );
    expect(code).toBe(0);
    expect(out).toEqual([
      "request:  POST https://backboard.railway.com/graphql/v2",
      "service:  railway",
      "actions:",
      "  - irreversible volumeDelete on production vol_123 → deny",
      "decision: deny",
      "reason:   irreversible `volumeDelete` on production volume vol_123: no rule allows irreversible effects on railway/production",
      "rule:     -",
    ]);
  });
  it("prints JSON with --json", async () => {
    const { ctx, out } = context();
    await policyCommand(["explain", "--policy", good, "--request", "GET https://api.github.com/repos/acme/app", "--json", "--offline", "--inventory", inventory], ctx);
    expect(JSON.parse(out.join("\n"))).toMatchObject({ ok: true, decision: "deny", service: "github", effect: "read" });
  });
  it("reports rejected requests", async () => {
    const { ctx, out } = context(true);
    await policyCommand(["explain", "--policy", good, "--request", "GET https://api.github.com/a/%2e%2e/b", "--offline", "--inventory", inventory], ctx);
    expect(JSON.parse(out.join("\n"))).toMatchObject({ decision: "deny", rejected: { code: "dot_segment" } });
  });
  it("policy errors exit 1", async () => {
    const { ctx, err } = context();
    expect(await policyCommand(["explain", "--policy", bad, "--request", "GET https://api.github.com/", "--offline"], ctx)).toBe(1);
    expect(err[0]).toMatch(/bad\.yaml:4: rules\[0\]\.effects\[1\]/);
  });
  it("needs --policy and --request", async () => {
    const { ctx } = context();
    await expect(policyCommand(["explain", "--policy", good], ctx)).rejects.toMatchObject({ exitCode: 2 });
    await expect(policyCommand(["explain", "--policy", good, "--request", "GET"], ctx)).rejects.toMatchObject({ exitCode: 2 });
    await expect(policyCommand(["explain", "--bogus"], ctx)).rejects.toMatchObject({ exitCode: 2 });
  });
});

describe("bulkhead policy schema / templates", () => {
  it("prints the JSON Schema", async () => {
    const { ctx, out } = context();
    await policyCommand(["schema"], ctx);
    expect(JSON.parse(out.join("\n"))).toMatchObject({ title: "Bulkhead policy" });
  });
  it("lists templates", async () => {
    const { ctx, out } = context();
    await policyCommand(["templates"], ctx);
    expect(out.some((l) => l.startsWith("hold-everything"))).toBe(true);
  });
});
