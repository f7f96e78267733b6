import { describe, expect, it } from "vitest";
import { loadAppConfig } from "@/lib/config/app";
import { loadCommonConfig, requireRuntimeDatabaseUrl } from "@/lib/config/common";
import { ConfigError } from "@/lib/config/env";
import { loadIdentityConfig } from "@/lib/config/identity";
import { loadDashboardKeyConfig, loadWorkerKeyConfig } from "@/lib/config/process-keys";
import { agentProxyAddress, loadWorkerConfig } from "@/lib/config/worker";
import { hostname } from "node:os";
import { loadSiemConfig } from "@/lib/config/siem";
import { loadRetiredSecretsConfig } from "@/lib/config/retired-secrets";

describe("configuration is validated once, with messages that name the variable", () => {
  it("applies documented defaults", () => {
    expect(loadWorkerConfig({})).toMatchObject({ proxyHost: "127.0.0.1", proxyPort: 8080, healthPort: 8081 });
    expect(loadAppConfig({})).toMatchObject({ host: "127.0.0.1", port: 3000, publicUrl: "http://127.0.0.1:3000", oidc: undefined });
    expect(loadCommonConfig({}).databaseUrl).toBeUndefined();
  });

  it("bounds how long and how many retired credential secrets stay redacted, the same for the dashboard, the worker and the CLI", () => {
    const defaults = { retentionDays: 90, perService: 20 };
    expect(loadWorkerConfig({}).retiredSecrets).toEqual(defaults);
    expect(loadAppConfig({}).retiredSecrets).toEqual(defaults);
    expect(loadRetiredSecretsConfig({})).toEqual(defaults);
    const set = { BULKHEAD_RETIRED_SECRET_DAYS: "30", BULKHEAD_RETIRED_SECRETS_PER_SERVICE: "5" };
    expect(loadWorkerConfig(set).retiredSecrets).toEqual({ retentionDays: 30, perService: 5 });
    expect(loadAppConfig(set).retiredSecrets).toEqual({ retentionDays: 30, perService: 5 });
    for (const [name, value, message] of [
      ["BULKHEAD_RETIRED_SECRET_DAYS", "0", /BULKHEAD_RETIRED_SECRET_DAYS must be at least 1 day/],
      ["BULKHEAD_RETIRED_SECRET_DAYS", "1.5", /BULKHEAD_RETIRED_SECRET_DAYS must be a whole number of days/],
      ["BULKHEAD_RETIRED_SECRET_DAYS", "3651", /at most 3650/],
      ["BULKHEAD_RETIRED_SECRETS_PER_SERVICE", "0", /BULKHEAD_RETIRED_SECRETS_PER_SERVICE must be at least 1/],
      ["BULKHEAD_RETIRED_SECRETS_PER_SERVICE", "many", /BULKHEAD_RETIRED_SECRETS_PER_SERVICE must be a whole number/],
      ["BULKHEAD_RETIRED_SECRETS_PER_SERVICE", "201", /at most 200/],
    ] as const) {
      for (const load of [loadWorkerConfig, loadAppConfig, loadRetiredSecretsConfig]) expect(() => load({ [name]: value }), `${name}=${value}`).toThrow(message);
    }
  });

  it.each([
    [{ BULKHEAD_PROXY_PORT: "80800" }, /BULKHEAD_PROXY_PORT must be between 1 and 65535 \(it is set; the value is not shown\)/],
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
    expect(() => requireRuntimeDatabaseUrl("worker", { DATABASE_URL: owner })).toThrow(/BULKHEAD_WORKER_DATABASE_URL is required and it is not set: start Bulkhead with `npm start`/);
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
      [() => loadWorkerKeyConfig({ BULKHEAD_WORKER_KEY: `${secretish}${secretish}` }), "BULKHEAD_WORKER_KEY"],
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
    expect(loadWorkerKeyConfig({ BULKHEAD_WORKER_KEY: key }).workerKey.equals(Buffer.alloc(32, 9))).toBe(true);
  });
});

describe("configuration errors never print a value (secrets and passwords in URLs end up in logs)", () => {
  const loaders = { app: loadAppConfig, common: loadCommonConfig, worker: loadWorkerConfig, identity: loadIdentityConfig, databaseUrl: (env: Record<string, string | undefined>) => requireRuntimeDatabaseUrl("worker", env) };
  // Values every kind of variable refuses (a port, a URL, a number, an enum, a list), each
  // carrying a marker that must not appear in the message.
  const MARKER = "hunter2-s3cret";
  const invalid = [
    `postgres-but-not://bulkhead:${MARKER}@db:5432/x`,
    `mysql://bulkhead:${MARKER}@db/x`,
    `${MARKER}`,
    `-1${MARKER}`,
    `999999999${MARKER}`,
    `not a url ${MARKER} ://`,
    `10.0.0.0/99,${MARKER}`,
    `${MARKER}`.repeat(20),
  ];
  const VARIABLES = [
    "DATABASE_URL", "BULKHEAD_DATA_DIR", "BULKHEAD_PG_PORT", "BULKHEAD_MASTER_KEY", "LOG_LEVEL",
    "BULKHEAD_APP_HOST", "BULKHEAD_APP_PORT", "BULKHEAD_PUBLIC_URL", "AUTH_SECRET", "BULKHEAD_SESSION_HOURS", "BULKHEAD_SESSION_IDLE_MINUTES",
    "BULKHEAD_OIDC_ISSUER", "BULKHEAD_OIDC_CLIENT_ID", "BULKHEAD_OIDC_CLIENT_SECRET", "BULKHEAD_OIDC_NAME",
    "BULKHEAD_STEP_UP_MINUTES", "BULKHEAD_SIGNIN_ACCOUNT_ATTEMPTS", "BULKHEAD_SIGNIN_ADDRESS_ATTEMPTS",
    "BULKHEAD_SIGNIN_LOCKOUT_MINUTES", "BULKHEAD_API_KEY_ADDRESS_FAILURES", "BULKHEAD_TRUSTED_PROXIES", "BULKHEAD_ALLOWED_HOSTS", "BULKHEAD_WEBHOOK_ALLOWED_NETWORKS",
    "BULKHEAD_PROXY_HOST", "BULKHEAD_PROXY_PORT", "BULKHEAD_TRANSPARENT_HOST", "BULKHEAD_TRANSPARENT_HTTP_PORT",
    "BULKHEAD_TRANSPARENT_TLS_PORT", "BULKHEAD_WORKER_HEALTH_HOST", "BULKHEAD_WORKER_HEALTH_PORT",
    "BULKHEAD_POLICY_RECONCILE_SECONDS", "BULKHEAD_MAX_BODY_BYTES", "BULKHEAD_MAX_HEADER_BYTES",
    "BULKHEAD_CLIENT_TIMEOUT_SECONDS", "BULKHEAD_UPSTREAM_CONNECT_TIMEOUT_SECONDS", "BULKHEAD_UPSTREAM_TIMEOUT_SECONDS",
    "BULKHEAD_HOLD_TIMEOUT_SECONDS", "BULKHEAD_WORKER_ID", "BULKHEAD_TOKEN_ISSUER", "BULKHEAD_TOKEN_AUDIENCE",
  ];

  it("names every refused variable and never repeats what it was set to", () => {
    let refused = 0;
    for (const variable of VARIABLES) {
      for (const value of invalid) {
        for (const [name, load] of Object.entries(loaders)) {
          let error: unknown;
          try {
            load({ [variable]: value });
          } catch (e) {
            error = e;
          }
          if (error === undefined) continue;
          expect(error, `${name} ${variable}`).toBeInstanceOf(ConfigError);
          const text = `${String(error)}\n${JSON.stringify(error)}\n${(error as ConfigError).problems.join("\n")}`;
          expect(text, `${name} ${variable}`).not.toContain(MARKER);
          expect(text, `${name} ${variable}`).not.toContain("hunter2");
          expect(text).toMatch(/the value is not shown|it is not set/);
          refused++;
        }
      }
    }
    // Most variables refuse most of these values; the test is not vacuous.
    expect(refused).toBeGreaterThan(60);
  });

  it("a DATABASE_URL with a password that fails validation is named, its password is not printed", () => {
    const error = (() => {
      try {
        loadCommonConfig({ DATABASE_URL: "mysql://admin:CorrectHorse@db.internal/bulkhead" });
      } catch (e) {
        return e as ConfigError;
      }
    })();
    expect(error?.message).toMatch(/DATABASE_URL must be a postgres:\/\/ or postgresql:\/\/ URL \(it is set; the value is not shown\)/);
    expect(error?.message).not.toContain("CorrectHorse");
    expect(error?.message).not.toContain("db.internal");
  });
});

describe("dashboard security settings", () => {
  it("defaults: step-up after 5 minutes, 5 failures per account and 20 per address, 15 minutes at most, no trusted proxy", () => {
    const c = loadAppConfig({});
    expect(c.stepUpMaxAgeSeconds).toBe(300);
    expect(c.signInThrottle).toEqual({ accountAttempts: 5, addressAttempts: 20, maxLockoutSeconds: 900 });
    expect(c.apiKeyThrottle).toEqual({ failures: 100, maxLockoutSeconds: 900 });
    expect(c.trustedProxies).toEqual([]);
    expect(c.secure).toBe(false);
    expect(loadAppConfig({ BULKHEAD_PUBLIC_URL: "https://bulkhead.example.com" }).secure).toBe(true);
  });

  it("reads trusted proxies as addresses and CIDR ranges, and refuses anything else", () => {
    expect(loadAppConfig({ BULKHEAD_TRUSTED_PROXIES: " 10.0.0.0/8, 127.0.0.1 ,::1, fd00::/8" }).trustedProxies).toEqual(["10.0.0.0/8", "127.0.0.1", "::1", "fd00::/8"]);
    expect(() => loadAppConfig({ BULKHEAD_TRUSTED_PROXIES: "proxy.internal" })).toThrow(/BULKHEAD_TRUSTED_PROXIES must be a comma-separated list/);
    expect(() => loadAppConfig({ BULKHEAD_STEP_UP_MINUTES: "0" })).toThrow(/BULKHEAD_STEP_UP_MINUTES must be a positive number of minutes/);
  });

  it("webhooks: public receivers only by default; networks the operator lists, as CIDRs, none broader than /8; Bulkhead's own ports known", () => {
    const c = loadAppConfig({});
    expect(c.webhooks.allowedNetworks).toEqual([]);
    expect(c.webhooks.ownPorts).toEqual(expect.arrayContaining([3000, 8080, 8081, 8082, 8443, 15001, 15053, 54329]));
    expect(loadAppConfig({ BULKHEAD_APP_PORT: "3100", BULKHEAD_PROXY_PORT: "9080", BULKHEAD_PG_PORT: "6543" }).webhooks.ownPorts).toEqual(expect.arrayContaining([3100, 9080, 6543]));
    expect(loadAppConfig({ BULKHEAD_WEBHOOK_ALLOWED_NETWORKS: " 10.20.0.0/16, 127.0.0.1 ,fd00:1::/64,::1" }).webhooks.allowedNetworks).toEqual(["10.20.0.0/16", "127.0.0.1/32", "fd00:1::/64", "::1/128"]);
    for (const [value, why] of [
      ["0.0.0.0/0", /broader than \/8/],
      ["10.0.0.0/4", /broader than \/8/],
      ["hooks.internal", /is not a CIDR/],
      ["10.0.0.0/33", /is not a CIDR/],
      ["::ffff:10.0.0.0/104", /IPv4 inside IPv6/],
    ] as const) {
      let message = "";
      try {
        loadAppConfig({ BULKHEAD_WEBHOOK_ALLOWED_NETWORKS: value });
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message, value).toMatch(/BULKHEAD_WEBHOOK_ALLOWED_NETWORKS must be a comma-separated list of networks or addresses: an entry /);
      expect(message, value).toMatch(why);
      expect(message, value).not.toContain(value);
    }
  });

  it("refuses a SIEM URL with a user name or password, without repeating it", () => {
    for (const url of ["https://ingest:s3cr3t-hec@splunk.example/services/collector", "http://token@siem.example/"]) {
      let message = "";
      try {
        loadSiemConfig("/data", { BULKHEAD_SIEM_URL: url });
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        message = (error as Error).message + JSON.stringify((error as ConfigError).problems);
      }
      expect(message).toMatch(/BULKHEAD_SIEM_URL must not contain a user name or password/);
      expect(message).not.toContain("s3cr3t");
      expect(message).not.toContain("token@");
    }
    expect(loadSiemConfig("/data", { BULKHEAD_SIEM_URL: "https://splunk.example/services/collector?token=abc" })).toMatchObject({ kind: "http" });
  });
});

describe("the proxy address the dashboard shows with a minted token", () => {
  it("is the explicit proxy's host and port as the worker reads them", () => {
    expect(agentProxyAddress({})).toBe("127.0.0.1:8080");
    expect(agentProxyAddress({ BULKHEAD_PROXY_HOST: "10.0.0.5", BULKHEAD_PROXY_PORT: "9000" })).toBe("10.0.0.5:9000");
    expect(agentProxyAddress({ BULKHEAD_PROXY_HOST: "::1" })).toBe("[::1]:8080");
    // A wildcard listen address is no address to send to: the machine's name instead.
    expect(agentProxyAddress({ BULKHEAD_PROXY_HOST: "0.0.0.0" })).toBe(`${hostname()}:8080`);
    // Invalid (the worker refuses to start and says why): none shown rather than a wrong one.
    expect(agentProxyAddress({ BULKHEAD_PROXY_PORT: "99999" })).toBeNull();
  });
});
