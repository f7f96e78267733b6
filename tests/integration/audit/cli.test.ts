import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordAuditEvent } from "@/lib/audit/record";
import { auditCommand } from "@/cli/commands/audit";
import type { CliContext } from "@/cli/context";
import { generateMasterKey } from "@/lib/crypto/envelope";
import { createTestDatabase, databaseEnv, type TestDatabase } from "../../support/database";
import { tamper } from "./helpers";

describe("bulkhead audit verify / checkpoint / key", () => {
  let t: TestDatabase;
  let dir: string;
  const masterKey = generateMasterKey();

  /** Runs the command in-process with the test database and master key, capturing its output. */
  async function cli(args: string[]) {
    const stdout: string[] = [];
    const stderr: string[] = [];
    const ctx: CliContext = { json: args.includes("--json"), stdout: (l) => stdout.push(l), stderr: (l) => stderr.push(l), stdinIsTTY: true, readStdin: async () => "" };
    const env = { ...databaseEnv(t), BULKHEAD_MASTER_KEY: masterKey, BULKHEAD_DATA_DIR: dir };
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

  beforeAll(async () => {
    t = await createTestDatabase();
    dir = await mkdtemp(path.join(tmpdir(), "bh-audit-cli-"));
    for (let i = 0; i < 5; i++) await recordAuditEvent(t.db, { type: `cli.${i}`, actor: { actorType: "system", actorId: "cli" } });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
    await t.drop();
  });

  it("signs a checkpoint, always prints the latest, verifies the chain with the outside copies, and exits 1 once it is broken", async () => {
    const cp = await cli(["checkpoint", "--json"]);
    expect(cp.code).toBe(0);
    const saved = JSON.parse(cp.stdout[0]!);
    expect(saved).toMatchObject({ format: "bulkhead-audit-checkpoint", version: 2, number: "1", seq: "5", prevSignature: null, keyId: expect.stringMatching(/^ack_/) });
    expect(saved.location).toBe(path.join(dir, "audit-checkpoints", "checkpoint-00000000000000000001.json"));
    // Nothing new to sign: still the latest one, never null.
    const again = await cli(["checkpoint", "--json"]);
    expect(JSON.parse(again.stdout[0]!)).toEqual(saved);
    expect((await cli(["checkpoint"])).stdout[0]).toMatch(/^Latest checkpoint 1: seq 5, hash [0-9a-f]{64}, signed .* by ack_/);

    const ok = await cli(["verify"]);
    expect(ok.code).toBe(0);
    // The CLI's first keyed command also creates the token signing key (one more event).
    expect(ok.stdout[0]).toMatch(/^Audit chain OK: 6 events verified, last seq 6 .*1 signed checkpoint/);
    expect(ok.stdout[1]).toMatch(/^Outside copies OK \(folder .*audit-checkpoints\): 1 published checkpoint\(s\) verified/);

    const key = await cli(["key"]);
    expect(key.stdout[0]).toMatch(/^ack_[0-9a-f]{16}:[\w-]{43}$/);
    expect(key.stdout[0]!.startsWith(`${saved.keyId}:`)).toBe(true);

    // The table owner cuts the tail, moves the head back and deletes the checkpoint...
    await tamper(t.adminUrl, "DELETE FROM audit_events WHERE seq > 3; UPDATE audit_chain_head SET seq = 3, hash = (SELECT hash FROM audit_events WHERE seq = 3); DELETE FROM audit_checkpoints");
    expect((await cli(["verify", "--no-outside"])).code).toBe(0);
    // ...which the published copy shows by default, and a copy kept anywhere else with --trusted.
    const broken = await cli(["verify", "--json"]);
    expect(broken.code).toBe(1);
    const report = JSON.parse(broken.stdout[0]!);
    expect(report).toMatchObject({ ok: false, firstBadSeq: "4", problem: "truncated" });
    expect(report.outside.findings.map((f: { kind: string }) => f.kind)).toEqual(["checkpoint_deleted", "dropped_tail"]);
    const text = await cli(["verify"]);
    expect(text.stdout.join("\n")).toMatch(/Outside copies DISAGREE[^]*dropped_tail: published checkpoint 1 covers the chain up to seq 5, but the database's chain ends at seq 3/);
    const file = path.join(dir, "checkpoints.jsonl");
    await writeFile(file, `${cp.stdout[0]}\n`);
    expect(JSON.parse((await cli(["verify", "--no-outside", "--trusted", file, "--json"])).stdout[0]!)).toMatchObject({ ok: false, firstBadSeq: "4", problem: "truncated" });
    // The signer refuses to sign over the cut, and still prints the latest published checkpoint.
    const refused = await cli(["checkpoint", "--json"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr.join("\n")).toMatch(/refusing to sign: event 5, signed by checkpoint 1, is gone/);
    expect(JSON.parse(refused.stdout[0]!)).toEqual(saved);

    await tamper(t.adminUrl, "UPDATE audit_events SET type = 'edited' WHERE seq = 2");
    const edited = await cli(["verify"]);
    expect(edited.code).toBe(1);
    expect(edited.stdout[0]).toMatch(/^Audit chain BROKEN at seq 2: edited\./);
    // Only the first break is reported, and the output says so and how to look past it.
    expect(edited.stdout[1]).toMatch(/^Verification stops at the first break: events after it were not checked and may be broken too\. `bulkhead audit verify --from <seq>`/);
    // Past the edited event, the truncation found above is still there, hidden by the first break.
    expect(JSON.parse((await cli(["verify", "--from", "3", "--json"])).stdout[0]!)).toMatchObject({ ok: false, firstBadSeq: "4", problem: "truncated" });
  });

  it("explains its usage and rejects malformed flags", async () => {
    await expect(cli(["frobnicate"])).rejects.toMatchObject({ exitCode: 2 });
    await expect(cli(["verify", "--from", "0"])).rejects.toMatchObject({ exitCode: 2 });
    await expect(cli(["verify", "--key", "nope"])).rejects.toThrow(/KEY_ID:PUBLIC_KEY/);
  });
});
