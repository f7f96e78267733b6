import { describe, expect, it } from "vitest";
import { loadAppConfig } from "@/lib/config/app";
import { loadCommonConfig, requireDatabaseUrl } from "@/lib/config/common";
import { ConfigError } from "@/lib/config/env";
import { loadIdentityConfig } from "@/lib/config/identity";
import { loadWorkerConfig } from "@/lib/config/worker";

describe("configuration is validated once, with messages that name the variable", () => {
  it("applies documented defaults", () => {
    expect(loadWorkerConfig({})).toMatchObject({ proxyHost: "127.0.0.1", proxyPort: 8080, healthPort: 8081 });
    expect(loadAppConfig({})).toMatchObject({ host: "127.0.0.1", port: 3000, publicUrl: "http://127.0.0.1:3000", oidc: undefined });
    expect(loadCommonConfig({}).databaseUrl).toBeUndefined();
  });

  it.each([
    [{ BULKHEAD_PROXY_PORT: "80800" }, /BULKHEAD_PROXY_PORT must be between 1 and 65535 \(it is set; the value is not shown\)/],
    [{ BULKHEAD_WORKER_HEALTH_PORT: "http" }, /BULKHEAD_WORKER_HEALTH_PORT must be a port number/],
  ])("worker: %o", (env, message) => {
    expect(() => loadWorkerConfig(env)).toThrow(message);
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
    expect(() => requireDatabaseUrl({})).toThrow(/DATABASE_URL is required: start Bulkhead with `npm start`/);
  });

  it("rejects a short AUTH_SECRET", () => {
    expect(() => loadAppConfig({ AUTH_SECRET: "short" })).toThrow(/AUTH_SECRET must be at least 32 characters/);
  });
});

describe("configuration errors never print a value (secrets and passwords in URLs end up in logs)", () => {
  const loaders = { app: loadAppConfig, common: loadCommonConfig, worker: loadWorkerConfig, identity: loadIdentityConfig, databaseUrl: requireDatabaseUrl };
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
    "BULKHEAD_APP_HOST", "BULKHEAD_APP_PORT", "BULKHEAD_PUBLIC_URL", "AUTH_SECRET", "BULKHEAD_SESSION_HOURS",
    "BULKHEAD_OIDC_ISSUER", "BULKHEAD_OIDC_CLIENT_ID", "BULKHEAD_OIDC_CLIENT_SECRET", "BULKHEAD_OIDC_NAME",
    "BULKHEAD_STEP_UP_MINUTES", "BULKHEAD_SIGNIN_ACCOUNT_ATTEMPTS", "BULKHEAD_SIGNIN_ADDRESS_ATTEMPTS",
    "BULKHEAD_SIGNIN_LOCKOUT_MINUTES", "BULKHEAD_TRUSTED_PROXIES",
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
    expect(c.trustedProxies).toEqual([]);
    expect(c.secure).toBe(false);
    expect(loadAppConfig({ BULKHEAD_PUBLIC_URL: "https://bulkhead.example.com" }).secure).toBe(true);
  });

  it("reads trusted proxies as addresses and CIDR ranges, and refuses anything else", () => {
    expect(loadAppConfig({ BULKHEAD_TRUSTED_PROXIES: " 10.0.0.0/8, 127.0.0.1 ,::1, fd00::/8" }).trustedProxies).toEqual(["10.0.0.0/8", "127.0.0.1", "::1", "fd00::/8"]);
    expect(() => loadAppConfig({ BULKHEAD_TRUSTED_PROXIES: "proxy.internal" })).toThrow(/BULKHEAD_TRUSTED_PROXIES must be a comma-separated list/);
    expect(() => loadAppConfig({ BULKHEAD_STEP_UP_MINUTES: "0" })).toThrow(/BULKHEAD_STEP_UP_MINUTES must be a positive number of minutes/);
  });
});
