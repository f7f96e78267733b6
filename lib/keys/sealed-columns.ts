/**
 * Every column that holds a sealed secret, and which process's key opens it. Conversion and
 * master-key rotation walk exactly this list; a new sealed column must be added here (a test
 * compares it with the schema's `*_sealed` columns).
 */
import { idempotencyResponseAad } from "@/lib/http/idempotency-aad";
import { signingKeyAad } from "@/lib/identity/keys";
import { caKeyAad } from "@/lib/tls/ca-public";
import { credentialAad } from "@/lib/vault/view";
import { webhookAad } from "@/lib/webhooks/aad";

export interface SealedColumn {
  /** For messages and counts. */
  label: string;
  table: string;
  idColumn: string;
  idType: "uuid" | "text";
  column: string;
  /** The column whose value the associated data binds (default: idColumn), as text. */
  aadColumn?: string;
  aad(id: string): string;
  /** `dashboard`: symmetric envelope under the dashboard key; `worker`: sealed box to the worker key. */
  opener: "dashboard" | "worker";
}

export const SEALED_COLUMNS: readonly SealedColumn[] = [
  { label: "signing key", table: "signing_keys", idColumn: "kid", idType: "text", column: "private_key_sealed", aad: signingKeyAad, opener: "dashboard" },
  { label: "credential", table: "credentials", idColumn: "id", idType: "uuid", column: "secret_sealed", aad: credentialAad, opener: "worker" },
  // Secrets a rotation replaced or a deletion removed, sealed as they were (bound to their
  // credential's id, which a row shares with the credential's other retired secrets): redacted, never injected.
  { label: "retired credential secret", table: "retired_secrets", idColumn: "id", idType: "uuid", column: "secret_sealed", aadColumn: "credential_id", aad: credentialAad, opener: "worker" },
  { label: "webhook secret", table: "webhooks", idColumn: "id", idType: "uuid", column: "secret_sealed", aad: webhookAad, opener: "dashboard" },
  { label: "interception CA", table: "certificate_authorities", idColumn: "id", idType: "uuid", column: "private_key_sealed", aad: caKeyAad, opener: "worker" },
  { label: "idempotent response", table: "idempotency_keys", idColumn: "id", idType: "uuid", column: "response_sealed", aad: idempotencyResponseAad, opener: "dashboard" },
];
