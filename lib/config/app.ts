import { z } from "zod";
import { host, optionalString, parseEnv, port } from "./env";

const appSchema = z
  .object({
    BULKHEAD_APP_HOST: host.default("127.0.0.1"),
    BULKHEAD_APP_PORT: port.default(3000),
    /** The URL people use to reach the dashboard (links, OIDC callbacks, CSRF origin checks). */
    BULKHEAD_PUBLIC_URL: z.url({ error: "must be an absolute http(s) URL" }).optional(),
    AUTH_SECRET: z.string().min(32, "must be at least 32 characters (the launcher generates one)").optional(),
    BULKHEAD_SESSION_HOURS: z.coerce.number().positive("must be a positive number of hours").max(720).default(12),
    BULKHEAD_OIDC_ISSUER: z.url({ error: "must be the issuer URL of your OIDC provider" }).optional(),
    BULKHEAD_OIDC_CLIENT_ID: optionalString,
    BULKHEAD_OIDC_CLIENT_SECRET: optionalString,
    BULKHEAD_OIDC_NAME: z.string().default("Single sign-on"),
  })
  .superRefine((env, ctx) => {
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

export interface AppConfig {
  host: string;
  port: number;
  publicUrl: string;
  authSecret: string | undefined;
  sessionMaxAgeSeconds: number;
  oidc: OidcConfig | undefined;
}

export function loadAppConfig(source: Record<string, string | undefined> = process.env): AppConfig {
  const env = parseEnv(appSchema, source);
  const publicUrl = (env.BULKHEAD_PUBLIC_URL ?? `http://${env.BULKHEAD_APP_HOST}:${env.BULKHEAD_APP_PORT}`).replace(/\/$/, "");
  return {
    host: env.BULKHEAD_APP_HOST,
    port: env.BULKHEAD_APP_PORT,
    publicUrl,
    authSecret: env.AUTH_SECRET,
    sessionMaxAgeSeconds: Math.round(env.BULKHEAD_SESSION_HOURS * 3600),
    oidc:
      env.BULKHEAD_OIDC_ISSUER && env.BULKHEAD_OIDC_CLIENT_ID && env.BULKHEAD_OIDC_CLIENT_SECRET
        ? {
            issuer: env.BULKHEAD_OIDC_ISSUER,
            clientId: env.BULKHEAD_OIDC_CLIENT_ID,
            clientSecret: env.BULKHEAD_OIDC_CLIENT_SECRET,
            name: env.BULKHEAD_OIDC_NAME,
          }
        : undefined,
  };
}
