import type { Db } from "@/lib/db/client";
import { openBoxText, type BoxKeyPair } from "@/lib/crypto/sealed-box";
import { AppError } from "@/lib/errors/app-error";
import { environmentList, type Binding } from "./binding";
import { parseHeaderTemplate, renderHeader } from "./header-template";
import { credentialSecretForms } from "./secret-forms";
import { serviceKey } from "./host";
import { credentialAad } from "./view";

/** A decrypted credential, held in the proxy worker's memory only. */
export interface InjectableCredential extends Binding {
  credentialId: string;
  name: string;
  headerName: string;
  headerValue: string;
  /**
   * Every carrier of the secret an upstream could echo back (see secret-forms.ts); the proxy
   * redacts them, in any text escaping, before the agent sees a response.
   */
  secretForms: string[];
}

/** A credential could not be opened: wrong worker key, tampering, or a ciphertext moved between rows. */
export class CredentialLoadError extends AppError {
  constructor(message: string, cause: unknown) {
    super("CONFIG", message, { cause });
    this.name = "CredentialLoadError";
  }
}

/** Credentials by endpoint (`scheme://host:port`), one per endpoint. */
export type CredentialSet = ReadonlyMap<string, InjectableCredential>;

/**
 * For the proxy worker, the only holder of the worker key: every credential opened, keyed by
 * `scheme://host:port` (see serviceKey). Fails as a whole, loudly, when any credential cannot be
 * opened or two are stored for one endpoint (a template that cannot be used fails it too, unless
 * the caller collects such credentials in `unusable`: then they alone are left out): a worker must notice at once rather than silently
 * stop injecting, or guess. Unbound credentials (from before bindings existed) are opened too,
 * and serve nothing (selectCredential never picks them). Error messages name the credential,
 * never its secret.
 */
export async function loadCredentialsForInjection(db: Db, workerKey: BoxKeyPair, unusable?: string[]): Promise<Map<string, InjectableCredential>> {
  const rows = await db.credential.findMany({
    select: { id: true, name: true, scheme: true, host: true, port: true, serviceId: true, environments: true, headerTemplate: true, secretSealed: true },
    orderBy: { createdAt: "asc" },
  });
  const out = new Map<string, InjectableCredential>();
  const stored = new Map<string, string>();
  for (const row of rows) {
    const key = serviceKey(row.scheme, row.host, row.port);
    const other = stored.get(key);
    if (other) {
      throw new CredentialLoadError(`Credentials ${other} and ${row.name} are both bound to ${key}; delete one.`, undefined);
    }
    stored.set(key, row.name);
    let secret: string;
    try {
      secret = openBoxText(workerKey, row.secretSealed, credentialAad(row.id));
    } catch (error) {
      const reason = error instanceof Error ? error.message : "unknown error";
      throw new CredentialLoadError(`Credential ${row.name} (${row.id}) could not be decrypted: ${reason}`, error);
    }
    let header: { headerName: string; headerValue: string };
    try {
      header = renderHeader(row.headerTemplate, secret);
    } catch (error) {
      const reason = error instanceof AppError ? error.userMessage : "invalid template";
      const message = `Credential ${row.name} (${row.id}) cannot be injected: ${reason}`;
      // With `unusable` (the worker), a template a later version refuses (a header it may no
      // longer set) costs that credential only, said in `unusable`: the others are injected.
      if (!unusable) throw new CredentialLoadError(message, undefined);
      unusable.push(message);
      continue;
    }
    const template = parseHeaderTemplate(row.headerTemplate);
    // An unbound credential (no service, no environments) is kept, and serves nothing (binding.ts).
    const environments = environmentList(row.environments);
    // The secrets rotations replaced are redacted too, never injected (retired-secrets.ts).
    const secretForms = credentialSecretForms(secret, template.ok ? template.template : null);
    out.set(key, { credentialId: row.id, name: row.name, serviceId: row.serviceId, environments, ...header, secretForms });
  }
  return out;
}
