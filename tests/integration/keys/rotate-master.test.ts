import { createPrismaClient, type Db } from "@/lib/db/client";
import { fork } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { approvalSealKey, sealApproval, sealMatches } from "@/lib/approvals/seal";
import { writeCheckpoint } from "@/lib/audit/checkpoints";
import type { Actor } from "@/lib/auth/actor";
import { generateMasterKey, keyFingerprint, parseMasterKey } from "@/lib/crypto/envelope";
import { sealTo } from "@/lib/crypto/sealed-box";
import { ensureSigningKey, loadActiveSigningKey, rotateKeys } from "@/lib/identity/key-store";
import { resolveMasterKey } from "@/lib/identity/master-key";
import { issueTaskToken, verifyTaskTokenNow } from "@/lib/identity/task-tokens";
import { establishProcessKeys } from "@/lib/keys/establish";
import { assertProcessKeysCurrent, readKeyGeneration } from "@/lib/keys/generation";
import { deriveProcessKeys, keyGeneration, workerKeyEnvironment, type ProcessKeys } from "@/lib/keys/process-keys";
import { sealedValueCounts } from "@/lib/keys/reseal";
import { rotateMasterKey } from "@/lib/keys/rotate-master";
import { createTask } from "@/lib/tasks/tasks";
import { ensureCertificateAuthority, loadCertificateAuthority, rotateCertificateAuthority } from "@/lib/tls/ca-store";
import { addCredential, loadCredentialsForInjection, loadRetiredSecrets, rotateCredential, serviceKey } from "@/lib/vault";
import { credentialAad } from "@/lib/vault/view";
import { runCli } from "../../support/cli";
import { createTestDatabase, databaseEnv, type TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";
import { freePort } from "../../support/free-port";

const identity = { issuer: "bulkhead", audience: "bulkhead-proxy" };

const CREDENTIALS = 400;

/**
 * `bulkhead keys rotate-master` against a real database and a real data folder: killed halfway
 * and resumed, raced by a dashboard still holding the old keys, fed a tampered value, and with
 * the key in the environment instead of the data folder.
 */
describe("master-key rotation", () => {
  let t: TestDatabase;
  let dataDir: string;
  let admin: Actor;
  const secrets = new Map<string, string>();
  /** Retired secrets by their row's id. */
  const retiredSecrets = new Map<string, string>();
  let oldToken: string;
  let taskId: string;
  // The rotation rewrites sealed columns no runtime role may write: the CLI runs it as the owner.
  let ownerDb: Db;

  const keyFile = () => path.join(dataDir, "master.key");
  const nextFile = () => path.join(dataDir, "master.key.next");
  const currentKeys = (): ProcessKeys => deriveProcessKeys(parseMasterKey(readFileSync(keyFile(), "utf8")));
  const cliEnv = () => ({ ...process.env, ...databaseEnv(t), BULKHEAD_DATA_DIR: dataDir, BULKHEAD_MASTER_KEY: "", LOG_LEVEL: "silent" });
  /** The real CLI entry point in-process, with this test's data folder and no key in the environment. */
  const cli = async (argv: string[]) => {
    const saved = { key: process.env.BULKHEAD_MASTER_KEY, dir: process.env.BULKHEAD_DATA_DIR };
    delete process.env.BULKHEAD_MASTER_KEY;
    process.env.BULKHEAD_DATA_DIR = dataDir;
    try {
      return await runCli(argv, { database: t });
    } finally {
      for (const [k, v] of [["BULKHEAD_MASTER_KEY", saved.key], ["BULKHEAD_DATA_DIR", saved.dir]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  };
  const rotateInProcess = (onResealed?: () => void) =>
    rotateMasterKey({ db: ownerDb, dataDir, current: resolveMasterKey(undefined, dataDir, { create: false }), actor: { kind: "system", label: "cli" }, onResealed });

  /** Every sealed value opens with `keys`, and no value is sealed with any other key. */
  async function expectAllSealedFor(keys: ProcessKeys) {
    const injected = await loadCredentialsForInjection(t.db, keys.workerKey);
    for (const [id, secret] of secrets) expect([...injected.values()].find((c) => c.credentialId === id)?.headerValue, id).toBe(`Bearer ${secret}`);
    expect(injected.size).toBe(secrets.size);
    expect((await loadCertificateAuthority(t.db, keys.workerKey)).id).toBeTruthy();
    expect(await loadActiveSigningKey(t.db, keys.dashboardKey)).toBeDefined();
    // Every retired secret (rotated away or deleted) opens too, and is what the worker redacts.
    const all = { retentionDays: 3650, perService: 100_000 };
    const stored = await t.db.retiredSecret.findMany({ select: { id: true, scheme: true, host: true, port: true } });
    const opened = await loadRetiredSecrets(t.db, keys.workerKey, all);
    expect(opened.count).toBe(stored.length);
    let checked = 0;
    for (const row of stored) {
      const old = retiredSecrets.get(row.id);
      if (old === undefined) continue;
      expect(opened.byEndpoint.get(serviceKey(row.scheme, row.host, row.port)), row.id).toContain(old);
      checked++;
    }
    expect(checked).toBeGreaterThan(0);
    const fingerprints = new Set((await sealedValueCounts(t.db)).map((c) => c.fingerprint));
    expect(fingerprints).toEqual(new Set([keys.workerKey.fingerprint, keyFingerprint(keys.dashboardKey)]));
  }

  beforeAll(async () => {
    t = await createTestDatabase();
    ownerDb = createPrismaClient(t.ownerUrl, 2);
    dataDir = mkdtempSync(path.join(tmpdir(), "bh-rotate-"));
    writeFileSync(keyFile(), `${generateMasterKey()}\n`, { mode: 0o600 });
    const master = parseMasterKey(readFileSync(keyFile(), "utf8"));
    const { keys } = await establishProcessKeys(t.db, master, dataDir);
    await ensureSigningKey(t.db, keys.dashboardKey);
    await ensureCertificateAuthority(t.db, keys.workerKey);
    const owner = await makeUser(t.db, "admin");
    admin = owner.actor;
    const rows = Array.from({ length: CREDENTIALS }, (_, i) => {
      const id = randomUUID();
      const secret = `sk_live_${randomUUID().replace(/-/g, "")}`;
      secrets.set(id, secret);
      return { id, name: `bulk-${i}-${id.slice(0, 8)}`, scheme: "https", host: `bulk-${i}.example.test`, port: 443, headerTemplate: "Authorization: Bearer {secret}", secretSealed: sealTo(keys.workerKey, secret, credentialAad(id)) };
    });
    await t.db.credential.createMany({ data: rows });
    // Some were rotated twice: both secrets they replaced are sealed too (bound to the credential's
    // id, not the row's), and must open after the rotation.
    const retired = rows.flatMap((row, i) =>
      i % 2 !== 0
        ? []
        : [1, 2].map(() => {
            const id = randomUUID();
            const old = `sk_old_${randomUUID()}`;
            retiredSecrets.set(id, old);
            const { id: credentialId, name: credentialName, secretSealed: _current, ...endpoint } = row;
            return { id, credentialId, credentialName, ...endpoint, secretSealed: sealTo(keys.workerKey, old, credentialAad(credentialId)), reason: "rotated" as const };
          }),
    );
    await t.db.retiredSecret.createMany({ data: retired });
    const agent = await t.db.agent.create({ data: { name: unique("agent"), ownerId: owner.user.id } });
    taskId = (await createTask(t.db, admin, { agentId: agent.id, purpose: "rotation", policyYaml: "unlisted: deny\nrules: []\n", ttl: "2h" })).id;
    oldToken = (await issueTaskToken(t.db, admin, keys.dashboardKey, identity, taskId)).token;
    expect(await writeCheckpoint(t.db, keys.checkpointKey)).not.toBeNull();
  });
  afterAll(async () => {
    await ownerDb.$disconnect();
    await t.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("killed halfway (SIGKILL of the real command), then resumed: every secret opens with the new key, none needs the old one", async () => {
    const old = currentKeys();
    let killedHalfway = false;
    // The command may finish before the kill lands; then it rotated for real and we try again.
    for (let attempt = 0; attempt < 4 && !killedHalfway; attempt++) {
      const before = currentKeys();
      const child = fork(path.resolve("bin/bulkhead.mjs"), ["keys", "rotate-master"], { env: cliEnv(), stdio: ["ignore", "ignore", "ignore", "ipc"] });
      const exited = new Promise<void>((r) => child.once("exit", () => r()));
      let done = false;
      void exited.then(() => (done = true));
      while (!done) {
        if (existsSync(nextFile())) {
          const next = deriveProcessKeys(parseMasterKey(readFileSync(nextFile(), "utf8")));
          const [row] = await t.db.$queryRaw<Array<{ n: number }>>`SELECT count(*)::int AS n FROM credentials WHERE secret_sealed LIKE ${`sb1.${next.workerKey.fingerprint}.%`}`;
          if (row!.n > 0 && row!.n < CREDENTIALS) {
            child.kill("SIGKILL");
            killedHalfway = true;
            break;
          }
        }
        await new Promise((r) => setTimeout(r, 5));
      }
      await exited;
      if (!killedHalfway) expect(currentKeys().masterFingerprint).not.toBe(before.masterFingerprint); // it finished: a full rotation
    }
    expect(killedHalfway).toBe(true);
    const staged = deriveProcessKeys(parseMasterKey(readFileSync(nextFile(), "utf8")));
    const halfway = await sealedValueCounts(t.db);
    expect(halfway.find((c) => c.label === "credential" && c.fingerprint === staged.workerKey.fingerprint)?.count).toBeGreaterThan(0);

    // Meanwhile nothing may start with keys about to be retired.
    await expect(establishProcessKeys(t.db, parseMasterKey(readFileSync(keyFile(), "utf8")), dataDir)).rejects.toThrow(/rotation \(to key [0-9a-f]{16}\) is unfinished/);

    const resumed = await cli(["keys", "rotate-master", "--json"]);
    expect(resumed.code, resumed.stderr.join("\n")).toBe(0);
    const result = JSON.parse(resumed.stdout[0]!) as { to: string; setEnvironment: boolean; keyFile: string };
    expect(result).toMatchObject({ to: staged.masterFingerprint, setEnvironment: false, keyFile: keyFile() });
    expect(existsSync(nextFile())).toBe(false);
    const now = currentKeys();
    expect(now.masterFingerprint).toBe(staged.masterFingerprint);
    await expectAllSealedFor(now);
    expect(await readKeyGeneration(t.db)).toEqual(keyGeneration(now));

    // The old keys open nothing any more.
    await expect(loadCredentialsForInjection(t.db, old.workerKey)).rejects.toThrow(/sealed for key/);
    await expect(loadRetiredSecrets(t.db, old.workerKey, { retentionDays: 3650, perService: 100_000 })).rejects.toThrow(/sealed for key/);
    await expect(loadCertificateAuthority(t.db, old.workerKey)).rejects.toThrow(/sealed for key/);
    await expect(loadActiveSigningKey(t.db, old.dashboardKey)).rejects.toThrow(/sealed for key/);
    // Tokens minted before still verify (signing keys keep their public halves), and the audit
    // chain with the checkpoint signed under the old master key still verifies.
    await expect(verifyTaskTokenNow(t.db, identity, oldToken)).resolves.toBeDefined();
    const verify = await cli(["audit", "verify", "--json"]);
    expect(verify.code, verify.stdout.join()).toBe(0);
    expect(JSON.parse(verify.stdout[0]!)).toMatchObject({ ok: true, checkpoints: expect.any(Number) });
    expect(await t.db.auditEvent.count({ where: { type: "master_key.rotated" } })).toBeGreaterThanOrEqual(1);
  }, 180_000);

  it("a dashboard or worker still holding the old keys writes nothing, and the worker refuses to start", async () => {
    const old = currentKeys();
    await rotateInProcess();
    const now = currentKeys();
    expect(now.masterFingerprint).not.toBe(old.masterFingerprint);
    const count = await t.db.credential.count();
    await expect(addCredential(t.db, admin, old.workerKey, { environments: "*", name: unique("stale"), host: "stale.example.test", headerTemplate: "X-Key: {secret}", secret: "s3cret" })).rejects.toThrow(
      /was rotated.*Nothing was written/,
    );
    const anyId = [...secrets.keys()][0]!;
    await expect(rotateCredential(t.db, admin, old.workerKey, anyId, "s3cret-2")).rejects.toThrow(/Nothing was written/);
    await expect(rotateKeys(t.db, admin, old.dashboardKey, { maxTokenTtlSeconds: 3600 })).rejects.toThrow(/Nothing was written/);
    await expect(rotateCertificateAuthority(t.db, admin, old.workerKey)).rejects.toThrow(/Nothing was written/);
    await expect(assertProcessKeysCurrent(t.db, { dashboard: keyFingerprint(old.dashboardKey) })).rejects.toThrow(/Restart Bulkhead/);
    expect(await t.db.credential.count()).toBe(count);
    await expectAllSealedFor(now);

    // The real worker process with the old keys stops at once, saying why, printing no key.
    const oldEnv = workerKeyEnvironment(old);
    const child = fork(path.resolve("bin/bulkhead.mjs"), ["worker"], {
      env: { ...process.env, ...oldEnv, BULKHEAD_WORKER_DATABASE_URL: t.workerUrl, BULKHEAD_PROXY_PORT: String(await freePort()), BULKHEAD_WORKER_HEALTH_PORT: String(await freePort()), BULKHEAD_AUDIT_SPOOL_DIR: path.join(dataDir, "spool"), LOG_LEVEL: "silent" },
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    });
    let output = "";
    child.stdout!.on("data", (c: Buffer) => (output += c.toString()));
    child.stderr!.on("data", (c: Buffer) => (output += c.toString()));
    const code = await new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
    expect(code).not.toBe(0);
    expect(output).toMatch(/does not belong to the keys the data is sealed with/);
    for (const value of Object.values(oldEnv)) expect(output).not.toContain(value);
  }, 120_000);

  it("a write committed by an old-key dashboard during the rotation is resealed at the switch-over", async () => {
    const old = currentKeys();
    let raced: string | null = null;
    const racedSecret = `sk_race_${randomUUID()}`;
    let calls = 0;
    const pending: Array<Promise<unknown>> = [];
    await rotateInProcess(() => {
      if (++calls !== 5) return;
      // A dashboard that was not restarted adds and rotates credentials with the old keys.
      pending.push(
        addCredential(t.db, admin, old.workerKey, { environments: "*", name: unique("race"), host: `${unique("race")}.example.test`, headerTemplate: "Authorization: Bearer {secret}", secret: racedSecret }).then((c) => {
          raced = c.id;
          secrets.set(c.id, racedSecret);
        }),
      );
    });
    await Promise.allSettled(pending);
    // Either the write committed before the switch-over (and was resealed by it) or it was refused.
    if (raced) {
      expect((await loadCredentialsForInjection(t.db, currentKeys().workerKey)).size).toBe(secrets.size);
    }
    await expectAllSealedFor(currentKeys());
  }, 120_000);

  it("approvals that can still release a request keep a valid seal under the new key; unsealed and spent ones are left", async () => {
    const old = currentKeys();
    const agentId = (await t.db.task.findUniqueOrThrow({ where: { id: taskId } })).agentId;
    const row = (status: "pending" | "approved" | "consumed") => ({
      id: randomUUID(), taskId, agentId, status, requestDigest: "d".repeat(64), method: "DELETE", url: "https://api.railway.test/volumes/vol_1",
      reason: "held", actions: [{ service: "railway", effect: "irreversible" }], requestHeaders: { "content-type": "application/json" },
      requestBody: Buffer.from('{"confirm":true}'), requiredApprovals: 1, jti: null, expiresAt: new Date(Date.now() + 600_000),
    });
    const sealed = (r: ReturnType<typeof row>, key: Buffer) => ({ ...r, seal: sealApproval(key, { ...r, requestBody: new Uint8Array(r.requestBody) }) });
    const oldSeal = approvalSealKey(old.workerKey.privateKey);
    const pending = sealed(row("pending"), oldSeal);
    const approved = sealed(row("approved"), oldSeal);
    const spent = sealed(row("consumed"), oldSeal);
    const forged = { ...row("approved"), seal: `v1.${"0".repeat(64)}` };
    const unsealed = { ...row("approved"), seal: null };
    for (const r of [pending, approved, spent, forged, unsealed]) await t.adminDb().approval.create({ data: r });

    const result = await rotateInProcess();
    expect(result.resealed["approval seal"]).toBe(2);
    const newSeal = approvalSealKey(currentKeys().workerKey.privateKey);
    const matches = async (r: ReturnType<typeof row>) => {
      const stored = await t.db.approval.findUniqueOrThrow({ where: { id: r.id }, select: { seal: true } });
      return sealMatches(newSeal, { ...r, requestBody: new Uint8Array(r.requestBody) }, stored.seal);
    };
    expect(await matches(pending)).toBe(true);
    expect(await matches(approved)).toBe(true);
    // A spent grant releases nothing either way; what no worker sealed stays unsealed.
    expect(await matches(spent)).toBe(false);
    expect(await matches(forged)).toBe(false);
    expect((await t.db.approval.findUniqueOrThrow({ where: { id: unsealed.id } })).seal).toBeNull();
    await expectAllSealedFor(currentKeys());
  }, 120_000);

  it("a tampered value stops the rotation with a clear error, and the re-run finishes once it is dealt with", async () => {
    const old = currentKeys();
    const id = randomUUID();
    const tampered = sealTo(old.workerKey, "sk_tampered", credentialAad(id)).replace(/.$/, (c) => (c === "A" ? "B" : "A"));
    await t.db.credential.create({ data: { id, name: unique("tampered"), scheme: "https", host: "tampered.example.test", port: 443, headerTemplate: "X-Key: {secret}", secretSealed: tampered } });
    const failed = await cli(["keys", "rotate-master"]);
    expect(failed.code).toBe(1);
    expect(failed.stderr.join("\n")).toMatch(new RegExp(`credential ${id} \\(credentials.secret_sealed\\) does not open`));
    expect(failed.stderr.join("\n")).not.toContain("sk_tampered");
    expect(existsSync(nextFile())).toBe(true); // staged, not switched
    expect(currentKeys().masterFingerprint).toBe(old.masterFingerprint);
    await t.db.credential.delete({ where: { id } });
    const ok = await cli(["keys", "rotate-master"]);
    expect(ok.code, ok.stderr.join("\n")).toBe(0);
    expect(ok.stdout.join("\n")).toMatch(/Master key rotated: [0-9a-f]{16} -> [0-9a-f]{16}.*Restart Bulkhead/s);
    await expectAllSealedFor(currentKeys());
  }, 120_000);

  it("refuses to continue when the staged key was lost after rows changed, and continues once it is restored", async () => {
    let n = 0;
    await expect(rotateInProcess(() => {
      if (++n === 10) throw new Error("power cut");
    })).rejects.toThrow(/power cut/);
    renameSync(nextFile(), `${nextFile()}.moved`);
    const lost = await cli(["keys", "rotate-master"]);
    expect(lost.code).toBe(1);
    expect(lost.stderr.join("\n")).toMatch(/master\.key\.next is missing or holds another key\. Values already resealed need that key: restore the file/);
    renameSync(`${nextFile()}.moved`, nextFile());
    const staged = deriveProcessKeys(parseMasterKey(readFileSync(nextFile(), "utf8")));
    const ok = await cli(["keys", "rotate-master"]);
    expect(ok.code, ok.stderr.join("\n")).toBe(0);
    expect(currentKeys().masterFingerprint).toBe(staged.masterFingerprint);
    await expectAllSealedFor(currentKeys());
  }, 120_000);

  it("with the key in BULKHEAD_MASTER_KEY, leaves the new key for the operator and refuses the old one afterwards", async () => {
    const oldText = readFileSync(keyFile(), "utf8").trim();
    const withEnv = async (value: string, fn: () => Promise<unknown>) => {
      const saved = { key: process.env.BULKHEAD_MASTER_KEY, dir: process.env.BULKHEAD_DATA_DIR };
      process.env.BULKHEAD_MASTER_KEY = value;
      process.env.BULKHEAD_DATA_DIR = dataDir;
      try {
        return await fn();
      } finally {
        for (const [k, v] of [["BULKHEAD_MASTER_KEY", saved.key], ["BULKHEAD_DATA_DIR", saved.dir]] as const) {
          if (v === undefined) delete process.env[k];
          else process.env[k] = v;
        }
      }
    };
    const run = (await withEnv(oldText, () => runCli(["keys", "rotate-master"], { database: t }))) as Awaited<ReturnType<typeof runCli>>;
    expect(run.code, run.stderr.join("\n")).toBe(0);
    expect(run.stdout.join("\n")).toContain(`The new master key is in ${nextFile()}: set BULKHEAD_MASTER_KEY to its contents`);
    const newText = readFileSync(nextFile(), "utf8").trim();
    expect(readFileSync(keyFile(), "utf8").trim()).toBe(oldText); // an environment key is not the file's business
    // Starting with the old key now fails, and says what happened.
    await expect(establishProcessKeys(t.db, parseMasterKey(oldText), dataDir)).rejects.toThrow(/rotation moved the data to the key in .*master\.key\.next/);
    await expect(establishProcessKeys(t.db, parseMasterKey(newText), dataDir)).resolves.toBeDefined();
    await expectAllSealedFor(deriveProcessKeys(parseMasterKey(newText)));
  }, 120_000);
});
