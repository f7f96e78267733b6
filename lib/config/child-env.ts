/**
 * The environment of each process the launcher starts: the launcher's environment with every
 * secret Bulkhead knows of removed, plus that child's own secrets and nothing else.
 *
 * | secret | dashboard | worker |
 * |---|---|---|
 * | master key | no | no |
 * | session secret (AUTH_SECRET), OIDC client secret | yes | no |
 * | dashboard key (opens token signing keys) | yes | no |
 * | worker public key (seals credentials) | yes | (derives it from its own key) |
 * | worker key (opens credentials, CA key), checkpoint key | no | yes |
 * | database URL | its own role's | its own role's |
 * | SIEM endpoint (BULKHEAD_SIEM_URL) | its origin only | its origin only |
 *
 * Removal is by name and by shape (any BULKHEAD_/AUTH_ variable ending in KEY, SECRET, PASSWORD or
 * TOKEN, any *DATABASE_URL), so a secret variable added later is withheld until it is handed out
 * here on purpose.
 */
type Env = Record<string, string | undefined>;

const SECRET_NAMES = new Set(["BULKHEAD_MASTER_KEY", "AUTH_SECRET", "NEXTAUTH_SECRET", "BULKHEAD_OIDC_CLIENT_SECRET", "DATABASE_URL", "PGPASSWORD"]);
const SECRET_SHAPE = /^(BULKHEAD|AUTH|NEXTAUTH)_\w*(KEY|SECRET|PASSWORD|TOKEN)$/;
const DATABASE_URL_SHAPE = /(^|_)DATABASE_URL$/;

export function isSecretVariable(name: string): boolean {
  return SECRET_NAMES.has(name) || SECRET_SHAPE.test(name) || DATABASE_URL_SHAPE.test(name);
}

export interface ChildSecrets {
  /** Each process's own database variables (its own role's URL; cli/runtime/database-roles.ts). */
  databaseEnv: { dashboard: Env; worker: Env };
  authSecret: string;
  oidcClientSecret?: string;
  /** Each process's own keys as variables (lib/keys/process-keys.ts). */
  keys: { dashboard: Record<string, string>; worker: Record<string, string> };
}

export interface ChildEnvironments {
  dashboard: NodeJS.ProcessEnv;
  worker: NodeJS.ProcessEnv;
}

/** The launcher's environment with every secret removed (e.g. for the dashboard build). */
export function publicEnvironment(base: Env = process.env): NodeJS.ProcessEnv {
  return withoutSecrets(base) as NodeJS.ProcessEnv;
}

function defined(env: Env): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}

function withoutSecrets(base: Env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(base)) {
    if (value !== undefined && !isSecretVariable(name)) out[name] = value;
  }
  return out;
}

/**
 * BULKHEAD_SIEM_URL as the children get it. Only the launcher ships to the SIEM; the worker names
 * the sink in its metrics (the endpoint's origin, lib/audit/siem/lag.ts). An HTTP endpoint's path
 * and query may carry its ingest token (Splunk HEC, Datadog...), so the children get its origin
 * alone; `syslog+tcp://HOST:PORT` has nothing else.
 */
export function siemUrlForChildren(value: string): string | undefined {
  if (!/^https?:\/\//i.test(value)) return value;
  try {
    return new URL(value).origin;
  } catch {
    return undefined;
  }
}

export function childEnvironments(secrets: ChildSecrets, base: Env = process.env): ChildEnvironments {
  const common: Record<string, string> = { ...withoutSecrets(base), NEXT_TELEMETRY_DISABLED: "1" };
  if (common.BULKHEAD_SIEM_URL !== undefined) {
    const siem = siemUrlForChildren(common.BULKHEAD_SIEM_URL);
    if (siem === undefined) delete common.BULKHEAD_SIEM_URL;
    else common.BULKHEAD_SIEM_URL = siem;
  }
  const dashboard: Record<string, string> = {
    ...common,
    ...defined(secrets.databaseEnv.dashboard),
    AUTH_SECRET: secrets.authSecret,
    ...(secrets.oidcClientSecret ? { BULKHEAD_OIDC_CLIENT_SECRET: secrets.oidcClientSecret } : {}),
    ...secrets.keys.dashboard,
  };
  const worker: Record<string, string> = { ...common, ...defined(secrets.databaseEnv.worker), ...secrets.keys.worker };
  return { dashboard: dashboard as NodeJS.ProcessEnv, worker: worker as NodeJS.ProcessEnv };
}
