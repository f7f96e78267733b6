/**
 * Secrets a credential no longer injects (a rotation replaced it, or the credential was deleted),
 * kept sealed as they were, by the service they served, for a retention window. An upstream that
 * was sent one (a request log, a "last delivery" page) can still show it, and it is often still
 * valid there until it is revoked at the upstream: the worker redacts it from the answers of its
 * service and endpoint, and never injects it. Nobody reads it otherwise (the dashboard cannot
 * open it: it is sealed to the worker's key, and the dashboard moves the ciphertext only).
 *
 * Bounded twice, so that the patterns every answer is scanned for stay bounded: a secret is kept
 * `retentionDays` (BULKHEAD_RETIRED_SECRET_DAYS), and only the newest `perService`
 * (BULKHEAD_RETIRED_SECRETS_PER_SERVICE) per service. The dashboard prunes both when it writes
 * one, in the same transaction; the worker also loads only what is inside both bounds, so a
 * database nobody has written to lately redacts no more than that either.
 */
import type { Prisma } from "@/lib/generated/prisma/client";
import type { Db } from "@/lib/db/client";
import type { RetiredSecretsConfig } from "@/lib/config/retired-secrets";
import { openBoxText, type BoxKeyPair } from "@/lib/crypto/sealed-box";
import { parseHeaderTemplate } from "./header-template";
import { serviceKey } from "./host";
import { CredentialLoadError } from "./load-for-injection";
import { credentialSecretForms } from "./secret-forms";
import { credentialAad } from "./view";

type Tx = Prisma.TransactionClient;

/** The credential row a secret is retired from, as it is when retired (the sealed secret as stored). */
export interface RetiringCredential {
  id: string;
  name: string;
  serviceId: string | null;
  scheme: string;
  host: string;
  port: number;
  headerTemplate: string;
  secretSealed: string;
}

/**
 * Keeps `credential`'s sealed secret as retired (`rotated`: a rotation replaced it; `deleted`: the
 * credential goes), then prunes what is past the retention window or beyond the newest
 * `perService` of a service. Call inside the rotation's or deletion's transaction: the secret is
 * either still the credential's or retired, never neither. Workers hear of it at commit (the
 * credential's own notification, and this table's).
 */
export async function retireSecret(tx: Tx, credential: RetiringCredential, reason: "rotated" | "deleted", limits: RetiredSecretsConfig): Promise<void> {
  await tx.retiredSecret.create({
    data: {
      credentialId: credential.id,
      credentialName: credential.name,
      serviceId: credential.serviceId,
      scheme: credential.scheme,
      host: credential.host,
      port: credential.port,
      headerTemplate: credential.headerTemplate,
      secretSealed: credential.secretSealed,
      reason,
    },
  });
  await pruneRetiredSecrets(tx, limits);
}

/**
 * Removes retired secrets older than the retention window, and beyond the newest `perService` of
 * each service (unbound credentials' count as one service). Returns how many were removed.
 */
export async function pruneRetiredSecrets(tx: Pick<Db, "$executeRaw">, limits: RetiredSecretsConfig): Promise<number> {
  const old = await tx.$executeRaw`
    DELETE FROM "retired_secrets" WHERE "retired_at" < now() - make_interval(days => ${limits.retentionDays}::int)`;
  const beyond = await tx.$executeRaw`
    DELETE FROM "retired_secrets" WHERE "id" IN (
      SELECT "id" FROM (
        SELECT "id", row_number() OVER (PARTITION BY "service_id" ORDER BY "retired_at" DESC, "id" DESC) AS n FROM "retired_secrets"
      ) ranked WHERE n > ${limits.perService}::int)`;
  return old + beyond;
}

/** The retired secrets a worker redacts, as their carriers (secret-forms.ts), never as something to inject. */
export interface RetiredSecretSet {
  /** By service id (never "unknown", which no two endpoints share): for any request acting on that service. */
  byService: ReadonlyMap<string, readonly string[]>;
  /** By endpoint (`scheme://host:port`): for any request to that endpoint, whatever its service. */
  byEndpoint: ReadonlyMap<string, readonly string[]>;
  /** How many retired secrets were loaded. */
  count: number;
}

export const NO_RETIRED_SECRETS: RetiredSecretSet = { byService: new Map(), byEndpoint: new Map(), count: 0 };

type RetiredRow = { id: string; credential_id: string; credential_name: string; service_id: string | null; scheme: string; host: string; port: number; header_template: string; secret_sealed: string };

/**
 * For the proxy worker: the retired secrets inside both bounds, opened, as the carriers to redact.
 * Fails as a whole, loudly, when one cannot be opened (like the credentials: the worker keeps the
 * set it had rather than silently redact less). Messages name the credential, never a secret.
 */
export async function loadRetiredSecrets(db: Db, workerKey: BoxKeyPair, limits: RetiredSecretsConfig): Promise<RetiredSecretSet> {
  const rows = await db.$queryRaw<RetiredRow[]>`
    SELECT "id"::text, "credential_id"::text, "credential_name", "service_id", "scheme", "host", "port", "header_template", "secret_sealed" FROM (
      SELECT *, row_number() OVER (PARTITION BY "service_id" ORDER BY "retired_at" DESC, "id" DESC) AS n
        FROM "retired_secrets" WHERE "retired_at" >= now() - make_interval(days => ${limits.retentionDays}::int)
    ) kept WHERE n <= ${limits.perService}::int`;
  const byService = new Map<string, Set<string>>();
  const byEndpoint = new Map<string, Set<string>>();
  const add = (map: Map<string, Set<string>>, key: string, forms: readonly string[]) => {
    let set = map.get(key);
    if (!set) map.set(key, (set = new Set()));
    for (const form of forms) set.add(form);
  };
  for (const row of rows) {
    let secret: string;
    try {
      secret = openBoxText(workerKey, row.secret_sealed, credentialAad(row.credential_id));
    } catch (error) {
      const reason = error instanceof Error ? error.message : "unknown error";
      throw new CredentialLoadError(`A retired secret of credential ${row.credential_name} (${row.credential_id}, retired secret ${row.id}) could not be decrypted: ${reason}`, error);
    }
    const template = parseHeaderTemplate(row.header_template);
    const forms = credentialSecretForms(secret, template.ok ? template.template : null);
    add(byEndpoint, serviceKey(row.scheme, row.host, row.port), forms);
    if (row.service_id && row.service_id !== "unknown") add(byService, row.service_id, forms);
  }
  // Longest first, as the credentials' own carriers (the pattern prefers the longest match).
  const sorted = (map: Map<string, Set<string>>) => new Map([...map].map(([key, set]) => [key, [...set].sort((a, b) => b.length - a.length)] as const));
  return { byService: sorted(byService), byEndpoint: sorted(byEndpoint), count: rows.length };
}
