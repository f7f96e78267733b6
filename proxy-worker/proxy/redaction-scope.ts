import type { SemanticAction } from "@/lib/semantics/types";
import type { CredentialSet, InjectableCredential } from "@/lib/vault/load-for-injection";
import { NO_RETIRED_SECRETS, type RetiredSecretSet } from "@/lib/vault/retired-secrets";

/**
 * Whose secrets an answer is redacted of: the credential stored for the request's endpoint, and
 * the credential of each service the request acts on. A service's hosts and ports are one
 * upstream: what one of its endpoints was sent (the credential's), another can show (a request
 * log, the token's own settings page, an error on another port), and that endpoint has no
 * credential of its own to be redacted for. `unknown` (hosts no service describes) is no service
 * anyone shares. Besides, the same for secrets credentials no longer inject (`retired`: rotated
 * away or deleted, lib/vault/retired-secrets.ts): those of the request's `endpoint` and of each
 * service acted on. Null: nothing to redact.
 */
export function redactionForms(
  credentials: CredentialSet,
  stored: InjectableCredential | undefined,
  actions: readonly SemanticAction[],
  retired: RetiredSecretSet = NO_RETIRED_SECRETS,
  endpoint?: string,
): readonly string[] | null {
  const index = serviceIndex(credentials);
  // By who they are: a credential's id, a service's or an endpoint's retired secrets.
  const found = new Map<string, readonly string[]>();
  if (stored) found.set(`credential ${stored.credentialId}`, stored.secretForms);
  const atEndpoint = endpoint === undefined ? undefined : retired.byEndpoint.get(endpoint);
  if (atEndpoint) found.set(`endpoint ${endpoint}`, atEndpoint);
  for (const action of actions) {
    for (const credential of index.get(action.service) ?? []) found.set(`credential ${credential.credentialId}`, credential.secretForms);
    const ofService = action.service === "unknown" ? undefined : retired.byService.get(action.service);
    if (ofService) found.set(`service ${action.service}`, ofService);
  }
  if (found.size === 0) return null;
  if (found.size === 1) return [...found.values()][0]!;
  // The same array for the same credentials, so that the compiled pattern is reused (patternFor).
  const key = [...found.keys()].sort().join("\n");
  const unions = unionCache(credentials, retired);
  let forms = unions.get(key);
  if (!forms) {
    forms = [...new Set([...found.values()].flat())].sort((a, b) => b.length - a.length);
    unions.set(key, forms);
  }
  return forms;
}

const indexes = new WeakMap<CredentialSet, ReadonlyMap<string, readonly InjectableCredential[]>>();
const unions = new WeakMap<CredentialSet, WeakMap<RetiredSecretSet, Map<string, readonly string[]>>>();

/**
 * Each service's credentials: one per endpoint, so a service with several hosts, ports or
 * environments may have several, and an answer from any of its endpoints is redacted of them all.
 * Built once per loaded set.
 */
function serviceIndex(credentials: CredentialSet): ReadonlyMap<string, readonly InjectableCredential[]> {
  let index = indexes.get(credentials);
  if (!index) {
    const built = new Map<string, InjectableCredential[]>();
    for (const credential of credentials.values()) {
      if (!credential.serviceId || credential.serviceId === "unknown") continue;
      const list = built.get(credential.serviceId);
      if (list) list.push(credential);
      else built.set(credential.serviceId, [credential]);
    }
    indexes.set(credentials, (index = built));
  }
  return index;
}

/** Unions built for one loaded set of credentials and retired secrets (loaded together, swapped together). */
function unionCache(credentials: CredentialSet, retired: RetiredSecretSet): Map<string, readonly string[]> {
  let byRetired = unions.get(credentials);
  if (!byRetired) unions.set(credentials, (byRetired = new WeakMap()));
  let cache = byRetired.get(retired);
  if (!cache) byRetired.set(retired, (cache = new Map()));
  return cache;
}
