import type { SemanticAction } from "@/lib/semantics/types";
import type { CredentialSet, InjectableCredential } from "@/lib/vault/load-for-injection";

/**
 * Whose secrets an answer is redacted of: the credential stored for the request's endpoint, and
 * the credential of each service the request acts on. A service's hosts and ports are one
 * upstream: what one of its endpoints was sent (the credential's), another can show (a request
 * log, the token's own settings page, an error on another port), and that endpoint has no
 * credential of its own to be redacted for. `unknown` (hosts no service describes) is no service
 * anyone shares. Null: nothing to redact.
 */
export function redactionForms(credentials: CredentialSet, stored: InjectableCredential | undefined, actions: readonly SemanticAction[]): readonly string[] | null {
  const index = serviceIndex(credentials);
  const found = new Map<string, InjectableCredential>();
  if (stored) found.set(stored.credentialId, stored);
  for (const action of actions) {
    for (const credential of index.get(action.service) ?? []) found.set(credential.credentialId, credential);
  }
  if (found.size === 0) return null;
  if (found.size === 1) return [...found.values()][0]!.secretForms;
  // The same array for the same credentials, so that the compiled pattern is reused (patternFor).
  const key = [...found.keys()].sort().join(" ");
  const unions = unionCache(credentials);
  let forms = unions.get(key);
  if (!forms) {
    forms = [...new Set([...found.values()].flatMap((c) => c.secretForms))].sort((a, b) => b.length - a.length);
    unions.set(key, forms);
  }
  return forms;
}

const indexes = new WeakMap<CredentialSet, ReadonlyMap<string, readonly InjectableCredential[]>>();
const unions = new WeakMap<CredentialSet, Map<string, readonly string[]>>();

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

function unionCache(credentials: CredentialSet): Map<string, readonly string[]> {
  let cache = unions.get(credentials);
  if (!cache) unions.set(credentials, (cache = new Map()));
  return cache;
}
