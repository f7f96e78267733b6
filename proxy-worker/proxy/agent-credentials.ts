/**
 * Headers in which an agent could hand an upstream a credential of its own (one it found in a
 * project file, say). Bulkhead injects the only credential an upstream may see, so these never
 * leave the proxy, whether or not a vault credential is injected for the endpoint: Authorization
 * and Cookie, the header names well-known APIs read tokens from, and any header whose name ends in
 * -token, -api-key/-apikey, -secret, -password, -credential(s) or -connection-string
 * (`Project-Access-Token`, `X-Auth-Token`, `PRIVATE-TOKEN`, `DD-API-KEY`, Neon's
 * `Neon-Connection-String`, which carries a database password, ...). A credential in a query string or a body cannot be told
 * apart from data and is not covered (docs/proxy.md).
 */
import { gatewayName } from "./headers";

const NAMED = new Set([
  "authorization",
  "cookie",
  "api-key",
  "apikey",
  "x-apikey",
  "access-token",
  "ocp-apim-subscription-key",
  "x-functions-key",
  "x-honeycomb-team",
  "x-goog-api-key",
]);
const SUFFIX = /(?:^|[-_])(?:token|api-?key|apikey|secret|password|credentials?|connection-?string)$/;

export function isAgentCredentialHeader(name: string): boolean {
  // `-` and `_` are one to CGI, PHP and IIS: `X_Api_Key` reaches such an upstream as X-Api-Key.
  const lower = gatewayName(name.toLowerCase());
  return NAMED.has(lower) || SUFFIX.test(lower);
}

/** The agent's header names that must not be forwarded (lower-case). */
export function agentCredentialHeaders(headers: Record<string, string>): string[] {
  return Object.keys(headers).filter(isAgentCredentialHeader).map((n) => n.toLowerCase());
}
