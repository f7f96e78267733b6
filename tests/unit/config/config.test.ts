import { describe, expect, it } from "vitest";
import { loadAppConfig } from "@/lib/config/app";
import { loadCommonConfig, requireRuntimeDatabaseUrl } from "@/lib/config/common";
import { ConfigError } from "@/lib/config/env";
import { loadDashboardKeyConfig, loadWorkerKeyConfig } from "@/lib/config/process-keys";
import { loadWorkerConfig } from "@/lib/config/worker";

describe("configuration is validated once, with messages that name the variable", () => {
  it("applies documented defaults", () => {
    expect(loadWorkerConfig({})).toMatchObject({ proxyHost: "127.0.0.1", proxyPort: 8080, healthPort: 8081 });
    expect(loadAppConfig({})).toMatchObject({ host: "127.0.0.1", port: 3000, publicUrl: "http://127.0.0.1:3000", oidc: undefined });
    expect(loadCommonConfig({}).databaseUrl).toBeUndefined();
  });

  it.each([
    [{ BULKHEAD_PROXY_PORT: "80800" }, /BULKHEAD_PROXY_PORT must be between 1 and 65535 \(its value is not shown\)/],
    [{ BULKHEAD_WORKER_HEALTH_PORT: "http" }, /BULKHEAD_WORKER_HEALTH_PORT must be a port number/],
  ])("worker: %o", (env, message) => {
    expect(() => loadWorkerConfig(env)).toThrow(message);
  });

  it("configures the audit log: group fsync by default, strict on request, limits in MiB", () => {
    expect(loadWorkerConfig({})).toMatchObject({ auditDurability: "group", auditFsyncIntervalMs: 10, auditWalSoftLimitBytes: 64 * 2 ** 20, auditWalHardLimitBytes: 2048 * 2 ** 20, auditWalDir: undefined });
    expect(loadWorkerConfig({ BULKHEAD_AUDIT_DURABILITY: "strict", BULKHEAD_AUDIT_WAL_DIR: "/var/lib/bulkhead/wal" })).toMatchObject({ auditDurability: "strict", auditWalDir: "/var/lib/bulkhead/wal" });
    expect(() => loadWorkerConfig({ BULKHEAD_AUDIT_DURABILITY: "sometimes" })).toThrow(/BULKHEAD_AUDIT_DURABILITY must be group or strict/);
    expect(() => loadWorkerConfig({ BULKHEAD_AUDIT_WAL_SOFT_LIMIT_MB: "100", BULKHEAD_AUDIT_WAL_HARD_LIMIT_MB: "50" })).toThrow(/BULKHEAD_AUDIT_WAL_HARD_LIMIT_MB must be larger than BULKHEAD_AUDIT_WAL_SOFT_LIMIT_MB/);
    expect(() => loadWorkerConfig({ BULKHEAD_AUDIT_FSYNC_INTERVAL_MS: "0" })).toThrow(/BULKHEAD_AUDIT_FSYNC_INTERVAL_MS/);
  });

  it("refuses a partial OIDC configuration, naming each missing variable", () => {
    const error = (() => {
      try {
        loadAppConfig({ BULKHEAD_OIDC_ISSUER: "https://id.example.com" });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(String(error)).toMatch(/BULKHEAD_OIDC_CLIENT_ID is required when any BULKHEAD_OIDC_\* variable is set/);
    expect(String(error)).toMatch(/BULKHEAD_OIDC_CLIENT_SECRET is required/);
  });

  it("reads a full OIDC configuration", () => {
    const c = loadAppConfig({ BULKHEAD_OIDC_ISSUER: "https://id.example.com", BULKHEAD_OIDC_CLIENT_ID: "bh", BULKHEAD_OIDC_CLIENT_SECRET: "s" });
    expect(c.oidc).toEqual({ issuer: "https://id.example.com", clientId: "bh", clientSecret: "s", name: "Single sign-on" });
  });

  it("rejects a DATABASE_URL that is not a postgres URL and explains a missing one", () => {
    expect(() => loadCommonConfig({ DATABASE_URL: "mysql://x" })).toThrow(/DATABASE_URL must be a postgres:\/\/ or postgresql:\/\/ URL/);
    expect(() => loadCommonConfig({ BULKHEAD_WORKER_DATABASE_URL: "mysql://x" })).toThrow(/BULKHEAD_WORKER_DATABASE_URL must be a postgres/);
  });

  it("gives a runtime process its own role's URL and never falls back to the owner's silently", () => {
    const owner = "postgresql://bulkhead_owner:o@db.internal/bulkhead";
    const worker = "postgresql://bulkhead_worker:w@db.internal/bulkhead";
    expect(requireRuntimeDatabaseUrl("worker", { DATABASE_URL: owner, BULKHEAD_WORKER_DATABASE_URL: worker })).toBe(worker);
    expect(() => requireRuntimeDatabaseUrl("worker", { DATABASE_URL: owner })).toThrow(/BULKHEAD_WORKER_DATABASE_URL is required: start Bulkhead with `npm start`/);
    expect(() => requireRuntimeDatabaseUrl("dashboard", {})).toThrow(/BULKHEAD_DASHBOARD_DATABASE_URL is required/);
    // Only an explicit opt-in runs a process as the owner.
    expect(requireRuntimeDatabaseUrl("dashboard", { DATABASE_URL: owner, BULKHEAD_DATABASE_SINGLE_ROLE: "true" })).toBe(owner);
    expect(() => loadCommonConfig({ BULKHEAD_DATABASE_SINGLE_ROLE: "yes please" })).toThrow(/BULKHEAD_DATABASE_SINGLE_ROLE must be true or false/);
    expect(loadCommonConfig({ BULKHEAD_DASHBOARD_DATABASE_URL: worker }).externalDatabase).toBe(true);
    expect(loadCommonConfig({}).externalDatabase).toBe(false);
  });

  it("rejects a short AUTH_SECRET", () => {
    expect(() => loadAppConfig({ AUTH_SECRET: "short" })).toThrow(/AUTH_SECRET must be at least 32 characters/);
  });

  it("never prints a value, so a secret or a password in a URL never reaches a terminal or a log", () => {
    const secretish = "hunter2-Sup3rS3cret-password";
    const cases: Array<[() => unknown, string]> = [
      [() => loadAppConfig({ AUTH_SECRET: secretish }), "AUTH_SECRET"],
      [() => loadCommonConfig({ DATABASE_URL: `mysql://bulkhead:${secretish}@db.internal/bulkhead` }), "DATABASE_URL"],
      [() => requireRuntimeDatabaseUrl("worker", { BULKHEAD_WORKER_DATABASE_URL: `postgress://bulkhead:${secretish}@db.internal/bulkhead` }), "BULKHEAD_WORKER_DATABASE_URL"],
      [() => loadAppConfig({ BULKHEAD_OIDC_ISSUER: `https://user:${secretish}@` }), "BULKHEAD_OIDC_ISSUER"],
      [() => loadWorkerKeyConfig({ BULKHEAD_WORKER_KEY: `${secretish}${secretish}`, BULKHEAD_CHECKPOINT_KEY: secretish }), "BULKHEAD_WORKER_KEY"],
      [() => loadDashboardKeyConfig({ BULKHEAD_DASHBOARD_KEY: secretish, BULKHEAD_WORKER_PUBLIC_KEY: "x" }), "BULKHEAD_DASHBOARD_KEY"],
    ];
    for (const [load, name] of cases) {
      let message = "";
      try {
        load();
      } catch (error) {
        message = String(error);
      }
      expect(message, name).toContain(name);
      expect(message, name).not.toContain("hunter2");
      expect(message, name).not.toContain("Sup3r");
    }
  });

  it("says how to get a process key that is missing, without inventing one", () => {
    expect(() => loadWorkerKeyConfig({})).toThrow(/BULKHEAD_WORKER_KEY is required: start Bulkhead with `bulkhead start`.*`bulkhead keys env worker`/);
    expect(() => loadDashboardKeyConfig({})).toThrow(/BULKHEAD_DASHBOARD_KEY is required.*`bulkhead keys env dashboard`/);
    const key = Buffer.alloc(32, 9).toString("base64url");
    expect(loadWorkerKeyConfig({ BULKHEAD_WORKER_KEY: key, BULKHEAD_CHECKPOINT_KEY: key }).workerKey.equals(Buffer.alloc(32, 9))).toBe(true);
  });
});
