import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordAuditEvent } from "@/lib/audit/record";
import { auditCommand } from "@/lib/cli/audit";
import type { CliContext } from "@/lib/cli/context";
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
    const env = { ...databaseEnv(t), BULKHEAD_MASTER_KEY: masterKey };
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

  it("signs a checkpoint, verifies the chain, and exits 1 with the first bad seq once it is broken", async () => {
    const cp = await cli(["checkpoint", "--json"]);
    expect(cp.code).toBe(0);
    const saved = JSON.parse(cp.stdout[0]!);
    // Five events, plus the signing key the CLI creates on first use.
    expect(saved).toMatchObject({ seq: "6", keyId: expect.stringMatching(/^ack_/) });
    expect((await cli(["checkpoint"])).stdout[0]).toMatch(/Nothing new to sign/);

    const ok = await cli(["verify"]);
    expect(ok.code).toBe(0);
    expect(ok.stdout[0]).toMatch(/^Audit chain OK: 6 events verified, last seq 6 .*1 signed checkpoint/);

    const key = await cli(["key"]);
    expect(key.stdout[0]).toMatch(/^ack_[0-9a-f]{16}:[\w-]{43}$/);
    expect(key.stdout[0]!.startsWith(`${saved.keyId}:`)).toBe(true);

    // The table owner cuts the tail, moves the head back and deletes the checkpoint...
    await tamper(t.adminUrl, "DELETE FROM audit_events WHERE seq > 3; UPDATE audit_chain_head SET seq = 3, hash = (SELECT hash FROM audit_events WHERE seq = 3); DELETE FROM audit_checkpoints");
    expect((await cli(["verify"])).code).toBe(0);
    // ...which the checkpoint kept outside the database still shows.
    const file = path.join(dir, "checkpoints.jsonl");
    await writeFile(file, `${cp.stdout[0]}\n`);
    const broken = await cli(["verify", "--trusted", file, "--json"]);
    expect(broken.code).toBe(1);
    expect(JSON.parse(broken.stdout[0]!)).toMatchObject({ ok: false, firstBadSeq: "4", problem: "truncated" });

    await tamper(t.adminUrl, "UPDATE audit_events SET type = 'edited' WHERE seq = 2");
    const edited = await cli(["verify"]);
    expect(edited.code).toBe(1);
    expect(edited.stdout[0]).toMatch(/^Audit chain BROKEN at seq 2: edited\./);
  });

  it("explains its usage and rejects malformed flags", async () => {
    await expect(cli(["frobnicate"])).rejects.toMatchObject({ exitCode: 2 });
    await expect(cli(["verify", "--from", "0"])).rejects.toMatchObject({ exitCode: 2 });
    await expect(cli(["verify", "--key", "nope"])).rejects.toThrow(/KEY_ID:PUBLIC_KEY/);
  });
});
