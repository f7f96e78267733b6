import ipaddr from "ipaddr.js";
import { z } from "zod";
import { parseAllowInternal } from "@/lib/net/allow-internal";
import { loadCommonConfig } from "./common";
import { host, optionalString, parseEnv, port } from "./env";
import { sandboxListenPorts } from "./isolation";
import { retiredSecretsConfigOf, retiredSecretsEnv, type RetiredSecretsConfig } from "./retired-secrets";
import { workerListenPorts } from "./worker";

const count = (max: number) => z.coerce.number({ error: "must be a whole number" }).int("must be a whole number").min(1, "must be at least 1").max(max, `must be at most ${max}`);

/** Comma-separated addresses or CIDR ranges, e.g. "10.0.0.0/8, 127.0.0.1". */
const addressList = z
  .string()
  .optional()
  .transform((v) => (v ?? "").split(",").map((s) => s.trim()).filter((s) => s !== ""))
  .refine((list) => list.every((entry) => ipaddr.isValid(entry) || ipaddr.isValidCIDR(entry)), "must be a comma-separated list of IP addresses or CIDR ranges");

/**
 * Comma-separated networks (`10.20.0.0/16`) or single addresses (`127.0.0.1`) that webhooks may be
 * sent to although they are not public: the rules are the proxy's `allowInternal` ones (no entry
 * broader than /8; unspecified, multicast and IPv4-in-IPv6 are never allowed).
 */
const networkList = z
  .string()
  .optional()
  .transform((v, ctx) => {
    const entries = (v ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "");
    const cidrs = entries.map((entry) => (entry.includes("/") || !ipaddr.isValid(entry) ? entry : `${entry}/${ipaddr.parse(entry).kind() === "ipv4" ? 32 : 128}`));
    const parsed = parseAllowInternal(cidrs);
    if (!parsed.ok) {
      // The reason without the entry itself: configuration errors never repeat a value.
      ctx.addIssue({ code: "custom", message: `must be a comma-separated list of networks or addresses: an entry ${parsed.reason.replace(/^allowInternal entry "[^"]*" /, "")}` });
      return z.NEVER;
    }
    return cidrs;
  });

/** Comma-separated host names, e.g. "bulkhead.internal, dashboard.svc.cluster.local". */
const hostNameList = z
  .string()
  .optional()
  .transform((v) => (v ?? "").split(",").map((s) => s.trim().toLowerCase()).filter((s) => s !== ""))
  .refine((list) => list.every((name) => /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*\.?$/.test(name)), "must be a comma-separated list of host names (no scheme, port or path)");

const appSchema = z
  .object({
    BULKHEAD_APP_HOST: host.default("127.0.0.1"),
    BULKHEAD_APP_PORT: port.default(3000),
    /** The URL people use to reach the dashboard (links, OIDC callbacks, CSRF origin checks). */
    BULKHEAD_PUBLIC_URL: z.url({ error: "must be an absolute http(s) URL" }).optional(),
    AUTH_SECRET: z.string().min(32, "must be at least 32 characters (the launcher generates one)").optional(),
    BULKHEAD_SESSION_HOURS: z.coerce.number().positive("must be a positive number of hours").max(720).default(12),
    /** A session unused for this long ends (compared with its last-seen time, which is written at most once a minute). */
    BULKHEAD_SESSION_IDLE_MINUTES: z.coerce.number({ error: "must be a number of minutes" }).min(5, "must be at least 5 minutes").max(43_200, "must be at most 43200 (30 days)").optional(),
    BULKHEAD_OIDC_ISSUER: z.url({ error: "must be the issuer URL of your OIDC provider" }).optional(),
    BULKHEAD_OIDC_CLIENT_ID: optionalString,
    BULKHEAD_OIDC_CLIENT_SECRET: optionalString,
    BULKHEAD_OIDC_NAME: z.string().default("Single sign-on"),
    /** Dangerous changes need a password (or identity-provider) confirmation at most this old. */
    BULKHEAD_STEP_UP_MINUTES: z.coerce.number({ error: "must be a number of minutes" }).positive("must be a positive number of minutes").max(1440, "must be at most 1440 (a day)").default(5),
    /** Approval webhooks: the first retry waits this long, doubling each time (at most an hour). */
    BULKHEAD_WEBHOOK_RETRY_BASE_SECONDS: z.coerce.number({ error: "must be a number of seconds" }).positive("must be a positive number of seconds").max(3600, "must be at most 3600").default(5),
    /** Approval webhooks: attempts before a delivery is marked failed. */
    BULKHEAD_WEBHOOK_MAX_ATTEMPTS: count(100).default(8),
    /** Approval webhooks go to public addresses only, and to these networks besides. */
    BULKHEAD_WEBHOOK_ALLOWED_NETWORKS: networkList,
    /** Failed sign-ins per account, then per client address, before attempts are refused for a while. */
    BULKHEAD_SIGNIN_ACCOUNT_ATTEMPTS: count(1000).default(5),
    BULKHEAD_SIGNIN_ADDRESS_ATTEMPTS: count(100_000).default(20),
    /** The longest a throttled account or address waits; failures older than this are forgotten. */
    BULKHEAD_SIGNIN_LOCKOUT_MINUTES: count(1440).default(15),
    /** Failed API key authentications per client address before its Bearer requests are refused for a while (same lock lengths). */
    BULKHEAD_API_KEY_ADDRESS_FAILURES: count(100_000).default(100),
    /** Host names the dashboard answers besides its public URL's, its listening address, IP addresses and localhost (scripts/request-guard.mjs). */
    BULKHEAD_ALLOWED_HOSTS: hostNameList,
    /** Reverse proxies whose X-Forwarded-For is believed; empty: the TCP peer is the client. */
    BULKHEAD_TRUSTED_PROXIES: addressList,
    /** Set by scripts/app-server.mjs for its own process only: authenticates the peer-address header it adds. */
    BULKHEAD_INTERNAL_PEER_TOKEN: optionalString,
    /** Retired credential secrets: how long and how many per service are kept (pruned when one is written). */
    ...retiredSecretsEnv,
  })
  .superRefine((env, ctx) => {
    if (env.BULKHEAD_SESSION_IDLE_MINUTES !== undefined && env.BULKHEAD_SESSION_IDLE_MINUTES * 60 > env.BULKHEAD_SESSION_HOURS * 3600) {
      ctx.addIssue({ code: "custom", path: ["BULKHEAD_SESSION_IDLE_MINUTES"], message: "must not exceed the session lifetime (BULKHEAD_SESSION_HOURS)" });
    }
    const oidc = [env.BULKHEAD_OIDC_ISSUER, env.BULKHEAD_OIDC_CLIENT_ID, env.BULKHEAD_OIDC_CLIENT_SECRET];
    const set = oidc.filter((v) => v !== undefined).length;
    if (set !== 0 && set !== 3) {
      for (const name of ["BULKHEAD_OIDC_ISSUER", "BULKHEAD_OIDC_CLIENT_ID", "BULKHEAD_OIDC_CLIENT_SECRET"] as const) {
        if (env[name] === undefined) {
          ctx.addIssue({ code: "custom", path: [name], message: "is required when any BULKHEAD_OIDC_* variable is set" });
        }
      }
    }
  });

export interface OidcConfig {
  issuer: string;
  clientId: string;
  clientSecret: string;
  name: string;
}

export interface SignInThrottleConfig {
  accountAttempts: number;
  addressAttempts: number;
  maxLockoutSeconds: number;
}

/** Failed API key authentications per client address (lib/apikeys/failure-throttle.ts). */
export interface ApiKeyThrottleConfig {
  /** Failures from one address before it is locked. */
  failures: number;
  /** The longest lock; failures older than this are forgotten. */
  maxLockoutSeconds: number;
}

export interface AppConfig {
  host: string;
  port: number;
  publicUrl: string;
  /** The public URL is https: cookies are `__Host-` and Secure, and the CSP upgrades requests. */
  secure: boolean;
  authSecret: string | undefined;
  sessionMaxAgeSeconds: number;
  /** A session whose last-seen time is older than this ends (never more than sessionMaxAgeSeconds). */
  sessionIdleSeconds: number;
  oidc: OidcConfig | undefined;
  stepUpMaxAgeSeconds: number;
  webhooks: WebhookConfig;
  signInThrottle: SignInThrottleConfig;
  apiKeyThrottle: ApiKeyThrottleConfig;
  trustedProxies: string[];
  peerToken: string | undefined;
  /** Retired credential secrets kept (and redacted) for this long, this many per service. */
  retiredSecrets: RetiredSecretsConfig;
}

export interface WebhookConfig {
  retryBaseMs: number;
  maxAttempts: number;
  /** CIDRs of non-public networks receivers may be on (BULKHEAD_WEBHOOK_ALLOWED_NETWORKS). */
  allowedNetworks: string[];
  /** Bulkhead's own ports: never a receiver's on one of this machine's addresses. */
  ownPorts: number[];
}

export function loadAppConfig(source: Record<string, string | undefined> = process.env): AppConfig {
  const env = parseEnv(appSchema, source);
  const publicUrl = (env.BULKHEAD_PUBLIC_URL ?? `http://${env.BULKHEAD_APP_HOST}:${env.BULKHEAD_APP_PORT}`).replace(/\/$/, "");
  return {
    host: env.BULKHEAD_APP_HOST,
    port: env.BULKHEAD_APP_PORT,
    publicUrl,
    secure: publicUrl.startsWith("https://"),
    authSecret: env.AUTH_SECRET,
    sessionMaxAgeSeconds: Math.round(env.BULKHEAD_SESSION_HOURS * 3600),
    // Unset: an hour, or the whole lifetime when that is shorter.
    sessionIdleSeconds: Math.round(env.BULKHEAD_SESSION_IDLE_MINUTES !== undefined ? env.BULKHEAD_SESSION_IDLE_MINUTES * 60 : Math.min(3600, env.BULKHEAD_SESSION_HOURS * 3600)),
    oidc:
      env.BULKHEAD_OIDC_ISSUER && env.BULKHEAD_OIDC_CLIENT_ID && env.BULKHEAD_OIDC_CLIENT_SECRET
        ? {
            issuer: env.BULKHEAD_OIDC_ISSUER,
            clientId: env.BULKHEAD_OIDC_CLIENT_ID,
            clientSecret: env.BULKHEAD_OIDC_CLIENT_SECRET,
            name: env.BULKHEAD_OIDC_NAME,
          }
        : undefined,
    stepUpMaxAgeSeconds: Math.round(env.BULKHEAD_STEP_UP_MINUTES * 60),
    webhooks: {
      retryBaseMs: Math.round(env.BULKHEAD_WEBHOOK_RETRY_BASE_SECONDS * 1000),
      maxAttempts: env.BULKHEAD_WEBHOOK_MAX_ATTEMPTS,
      allowedNetworks: env.BULKHEAD_WEBHOOK_ALLOWED_NETWORKS,
      ownPorts: [...new Set([env.BULKHEAD_APP_PORT, ...workerListenPorts(source), ...sandboxListenPorts(source), loadCommonConfig(source).embeddedPgPort])],
    },
    signInThrottle: {
      accountAttempts: env.BULKHEAD_SIGNIN_ACCOUNT_ATTEMPTS,
      addressAttempts: env.BULKHEAD_SIGNIN_ADDRESS_ATTEMPTS,
      maxLockoutSeconds: env.BULKHEAD_SIGNIN_LOCKOUT_MINUTES * 60,
    },
    apiKeyThrottle: { failures: env.BULKHEAD_API_KEY_ADDRESS_FAILURES, maxLockoutSeconds: env.BULKHEAD_SIGNIN_LOCKOUT_MINUTES * 60 },
    trustedProxies: env.BULKHEAD_TRUSTED_PROXIES,
    peerToken: env.BULKHEAD_INTERNAL_PEER_TOKEN,
    retiredSecrets: retiredSecretsConfigOf(env),
  };
}
