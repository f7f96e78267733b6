import { hkdfSync, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { checkpointVerificationKey } from "@/lib/audit/checkpoints";
import { childEnvironments, isSecretVariable } from "@/lib/config/child-env";
import { loadSiemConfig } from "@/lib/config/siem";
import { siemSinkLabel } from "@/lib/audit/siem/lag";
import { loadDashboardKeyConfig, loadWorkerKeyConfig } from "@/lib/config/process-keys";
import { keyFingerprint, openSecret, sealSecret } from "@/lib/crypto/envelope";
import { boxKeyPairFromSeed, openBox, sealTo } from "@/lib/crypto/sealed-box";
import {
  dashboardKeyEnvironment,
  dashboardKeysFrom,
  deriveProcessKeys,
  keyGeneration,
  workerKeyEnvironment,
  workerKeysFrom,
} from "@/lib/keys/process-keys";

const master = randomBytes(32);
const keys = deriveProcessKeys(master);

/** What the launcher's own environment might hold: every secret an operator could set. */
const LAUNCHER_ENV = {
  PATH: "/usr/bin",
  HOME: "/home/bulkhead",
  BULKHEAD_MASTER_KEY: master.toString("base64url"),
  AUTH_SECRET: "session-secret-session-secret-session-secret",
  NEXTAUTH_SECRET: "older-name-of-the-session-secret-xxxxxxxxxxxx",
  BULKHEAD_OIDC_CLIENT_SECRET: "oidc-client-secret",
  BULKHEAD_OIDC_ISSUER: "https://id.example.com",
  DATABASE_URL: "postgresql://owner:owner-password@db.internal/bulkhead",
  BULKHEAD_OWNER_DATABASE_URL: "postgresql://owner:owner-password@db.internal/bulkhead",
  PGPASSWORD: "owner-password",
  BULKHEAD_SOMETHING_TOKEN: "a-later-secret",
  BULKHEAD_PROXY_PORT: "8080",
  BULKHEAD_TOKEN_ISSUER: "bulkhead",
};

function build() {
  return childEnvironments(
    {
      databaseEnv: { dashboard: { BULKHEAD_DASHBOARD_DATABASE_URL: "postgresql://dash:dpw@db/bulkhead" }, worker: { BULKHEAD_WORKER_DATABASE_URL: "postgresql://work:wpw@db/bulkhead" } },
      authSecret: LAUNCHER_ENV.AUTH_SECRET,
      oidcClientSecret: LAUNCHER_ENV.BULKHEAD_OIDC_CLIENT_SECRET,
      keys: { dashboard: dashboardKeyEnvironment(keys), worker: workerKeyEnvironment(keys) },
    },
    LAUNCHER_ENV,
  );
}

/** Every 32-byte value a process environment holds, read every way a key could be written. */
function candidateKeys(env: NodeJS.ProcessEnv): Buffer[] {
  const out: Buffer[] = [];
  for (const value of Object.values(env)) {
    if (!value) continue;
    for (const encoding of ["base64url", "base64", "hex"] as const) {
      const bytes = Buffer.from(value.trim(), encoding);
      if (bytes.length === 32) out.push(bytes);
    }
  }
  return out;
}

describe("per-process keys derived from the master key", () => {
  it("are distinct per process, deterministic, and differ from the master key", () => {
    const again = deriveProcessKeys(Buffer.from(master));
    expect(again.dashboardKey.equals(keys.dashboardKey)).toBe(true);
    expect(again.workerKey.fingerprint).toBe(keys.workerKey.fingerprint);
    const all = [master, keys.dashboardKey, keys.checkpointKey, keys.workerKey.raw].map((b) => b.toString("hex"));
    expect(new Set(all).size).toBe(4);
    expect(deriveProcessKeys(randomBytes(32)).workerKey.fingerprint).not.toBe(keys.workerKey.fingerprint);
  });

  it("keep the checkpoint key derived as before per-process keys, so existing checkpoints still verify", () => {
    const before = Buffer.from(hkdfSync("sha256", master, Buffer.alloc(0), "bulkhead/audit-checkpoint/v1", 32));
    expect(checkpointVerificationKey(keys.checkpointKey)).toEqual(checkpointVerificationKey(before));
  });

  it("round trip through each process's environment variables", () => {
    const dash = dashboardKeysFrom(loadDashboardKeyConfig(dashboardKeyEnvironment(keys)));
    const work = workerKeysFrom(loadWorkerKeyConfig(workerKeyEnvironment(keys)));
    expect(dash.dashboardKey.equals(keys.dashboardKey)).toBe(true);
    expect(dash.workerRecipient.fingerprint).toBe(keys.workerKey.fingerprint);
    expect(work.workerKey.fingerprint).toBe(keys.workerKey.fingerprint);
    expect(openBox(work.workerKey, sealTo(dash.workerRecipient, "s", "credential:x"), "credential:x").toString()).toBe("s");
    expect(keyGeneration(keys)).toMatchObject({ master: keyFingerprint(master), worker: keys.workerKey.fingerprint, dashboard: keyFingerprint(keys.dashboardKey) });
  });
});

describe("the launcher gives each child only its own secrets", () => {
  it("the dashboard gets its session secret and its keys; never the master key, the worker's key or the checkpoint key", () => {
    const { dashboard } = build();
    expect(dashboard.AUTH_SECRET).toBe(LAUNCHER_ENV.AUTH_SECRET);
    expect(dashboard.BULKHEAD_OIDC_CLIENT_SECRET).toBe(LAUNCHER_ENV.BULKHEAD_OIDC_CLIENT_SECRET);
    expect(dashboard.BULKHEAD_DASHBOARD_DATABASE_URL).toBe("postgresql://dash:dpw@db/bulkhead");
    expect(dashboard.DATABASE_URL).toBeUndefined();
    expect(dashboard.BULKHEAD_WORKER_DATABASE_URL).toBeUndefined();
    expect(dashboard).toMatchObject(dashboardKeyEnvironment(keys));
    for (const name of ["BULKHEAD_MASTER_KEY", "BULKHEAD_WORKER_KEY", "BULKHEAD_CHECKPOINT_KEY", "NEXTAUTH_SECRET", "BULKHEAD_OWNER_DATABASE_URL", "PGPASSWORD", "BULKHEAD_SOMETHING_TOKEN"]) {
      expect(dashboard[name], name).toBeUndefined();
    }
    expect(dashboard.PATH).toBe("/usr/bin");
    expect(dashboard.BULKHEAD_TOKEN_ISSUER).toBe("bulkhead");
  });

  it("the worker gets its own keys; never the master key, the session secret, the OIDC secret or the dashboard's key", () => {
    const { worker } = build();
    expect(worker.BULKHEAD_WORKER_DATABASE_URL).toBe("postgresql://work:wpw@db/bulkhead");
    expect(worker.DATABASE_URL).toBeUndefined();
    expect(worker.BULKHEAD_DASHBOARD_DATABASE_URL).toBeUndefined();
    expect(worker).toMatchObject(workerKeyEnvironment(keys));
    for (const name of ["BULKHEAD_MASTER_KEY", "AUTH_SECRET", "NEXTAUTH_SECRET", "BULKHEAD_OIDC_CLIENT_SECRET", "BULKHEAD_DASHBOARD_KEY", "BULKHEAD_WORKER_PUBLIC_KEY", "PGPASSWORD", "BULKHEAD_OWNER_DATABASE_URL"]) {
      expect(worker[name], name).toBeUndefined();
    }
    const values = Object.values(worker).join("\n");
    for (const secret of [LAUNCHER_ENV.AUTH_SECRET, LAUNCHER_ENV.BULKHEAD_MASTER_KEY, "owner-password", keys.dashboardKey.toString("base64url")]) {
      expect(values).not.toContain(secret);
    }
  });

  it("with exactly the dashboard's environment, a credential sealed for the worker does not open under any key it holds", () => {
    const { dashboard } = build();
    const sealed = sealTo(keys.workerKey, "ghp_the-production-token", "credential:c1");
    const candidates = candidateKeys(dashboard);
    expect(candidates.length).toBeGreaterThanOrEqual(2);
    for (const key of candidates) {
      expect(() => openBox(boxKeyPairFromSeed(key), sealed, "credential:c1")).toThrow();
      expect(() => openSecret(sealed, key, "credential:c1")).toThrow();
      // Nor is any of them the master key, from which the worker key could be derived.
      expect(key.equals(master)).toBe(false);
      expect(deriveProcessKeys(key).workerKey.fingerprint).not.toBe(keys.workerKey.fingerprint);
    }
  });

  it("with exactly the worker's environment, no token signing key opens", () => {
    const { worker } = build();
    const sealed = sealSecret('{"d":"signing key"}', keys.dashboardKey, "bulkhead:signing-key:bk_x");
    for (const key of candidateKeys(worker)) {
      expect(() => openSecret(sealed, key, "bulkhead:signing-key:bk_x")).toThrow();
      expect(key.equals(master)).toBe(false);
    }
  });

  it("hands the children the SIEM endpoint's origin only, never the ingest token in its path or query", () => {
    const withSiem = (url: string) =>
      childEnvironments(
        { databaseEnv: { dashboard: {}, worker: {} }, authSecret: LAUNCHER_ENV.AUTH_SECRET, keys: { dashboard: dashboardKeyEnvironment(keys), worker: workerKeyEnvironment(keys) } },
        { ...LAUNCHER_ENV, BULKHEAD_SIEM_URL: url },
      );
    const token = "hec-ingest-token-7f3a9c";
    const { dashboard, worker } = withSiem(`https://splunk.example:8088/services/collector/${token}?token=${token}`);
    for (const env of [dashboard, worker]) {
      expect(env.BULKHEAD_SIEM_URL).toBe("https://splunk.example:8088");
      expect(Object.values(env).join("\n")).not.toContain(token);
      // What the worker does with it still works: the same sink label as the launcher's.
      const config = loadSiemConfig("/data", env)!;
      expect(config.kind === "http" && siemSinkLabel(config)).toBe("https://splunk.example:8088");
    }
    expect(withSiem("syslog+tcp://siem.internal:6514").worker.BULKHEAD_SIEM_URL).toBe("syslog+tcp://siem.internal:6514");
  });

  it("withholds secret-looking variables by shape, so a secret added later is not handed out by accident", () => {
    for (const name of ["BULKHEAD_MASTER_KEY", "BULKHEAD_NEW_SIGNER_KEY", "BULKHEAD_S3_SECRET", "AUTH_GITHUB_SECRET", "BULKHEAD_WORKER_DATABASE_URL", "DATABASE_URL"]) {
      expect(isSecretVariable(name), name).toBe(true);
    }
    for (const name of ["BULKHEAD_TOKEN_ISSUER", "BULKHEAD_TOKEN_AUDIENCE", "BULKHEAD_PROXY_PORT", "PATH", "NODE_OPTIONS"]) {
      expect(isSecretVariable(name), name).toBe(false);
    }
  });
});
