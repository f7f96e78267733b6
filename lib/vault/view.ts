import type { Prisma } from "@/lib/generated/prisma/client";
import { environmentList } from "./binding";
import { serviceKey } from "./host";

/** What anyone with `read` may see about a credential: metadata only, never the secret. */
export interface CredentialView {
  id: string;
  name: string;
  scheme: string;
  host: string;
  port: number;
  /** `scheme://host:port` */
  service: string;
  /** The semantic service it serves ("railway", "unknown", ...); null: unbound, never injected. */
  serviceId: string | null;
  /** Environments it serves ("*" for all); empty: never injected. */
  environments: string[];
  headerName: string;
  headerTemplate: string;
  /** Always the same mask: not even the last characters of the secret are shown. */
  secret: typeof SECRET_MASK;
  createdAt: Date;
  rotatedAt: Date | null;
  lastUsedAt: Date | null;
  createdBy: string | null;
}

export const SECRET_MASK = "••••";

/** `secretSealed` is deliberately absent: the sealed secret is never read for display. */
export const credentialSelect = {
  id: true,
  name: true,
  scheme: true,
  host: true,
  port: true,
  serviceId: true,
  environments: true,
  headerTemplate: true,
  createdAt: true,
  rotatedAt: true,
  lastUsedAt: true,
  createdBy: { select: { email: true } },
} as const satisfies Prisma.CredentialSelect;

type Row = Prisma.CredentialGetPayload<{ select: typeof credentialSelect }>;

export function toCredentialView(row: Row): CredentialView {
  return {
    id: row.id,
    name: row.name,
    scheme: row.scheme,
    host: row.host,
    port: row.port,
    service: serviceKey(row.scheme, row.host, row.port),
    serviceId: row.serviceId,
    environments: environmentList(row.environments),
    headerName: row.headerTemplate.slice(0, Math.max(0, row.headerTemplate.indexOf(":"))),
    headerTemplate: row.headerTemplate,
    secret: SECRET_MASK,
    createdAt: row.createdAt,
    rotatedAt: row.rotatedAt,
    lastUsedAt: row.lastUsedAt,
    createdBy: row.createdBy?.email ?? null,
  };
}

/** The aad that binds a sealed secret to its row: a ciphertext copied to another row fails. */
export function credentialAad(id: string): string {
  return `credential:${id}`;
}

