import type { Prisma } from "@/lib/generated/prisma/client";
import type { Role } from "@/lib/auth/roles";
import { displayPrefix } from "./format";
import { lesserRole } from "./roles";

/** An API key as listed: never its hash, never the key. */
export interface ApiKeyView {
  id: string;
  name: string;
  /** `bk_<prefix>_…`: enough to recognise a key, useless to use it. */
  prefix: string;
  role: Role;
  /**
   * The role the key acts with now: its role lowered to its creator's current one (as
   * authenticate-api-key.ts does on every request), or null when the key is refused whatever its
   * role (its creator disabled or gone). A key's role is fixed when it is made; its creator's is not.
   */
  actsAs: Role | null;
  status: "active" | "expired" | "revoked";
  createdAt: Date;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
  createdBy: string | null;
}

/** `keyHash` is deliberately absent. */
export const apiKeySelect = {
  id: true,
  name: true,
  prefix: true,
  role: true,
  createdAt: true,
  expiresAt: true,
  lastUsedAt: true,
  revokedAt: true,
  createdById: true,
  createdBy: { select: { email: true, role: true, disabledAt: true } },
} as const satisfies Prisma.ApiKeySelect;

type Row = Prisma.ApiKeyGetPayload<{ select: typeof apiKeySelect }>;

export function toApiKeyView(row: Row, now = new Date()): ApiKeyView {
  return {
    id: row.id,
    name: row.name,
    prefix: displayPrefix(row.prefix),
    role: row.role,
    actsAs: row.createdById === null ? row.role : !row.createdBy || row.createdBy.disabledAt ? null : lesserRole(row.role, row.createdBy.role),
    status: row.revokedAt ? "revoked" : row.expiresAt && row.expiresAt <= now ? "expired" : "active",
    createdAt: row.createdAt,
    expiresAt: row.expiresAt,
    lastUsedAt: row.lastUsedAt,
    revokedAt: row.revokedAt,
    createdBy: row.createdBy?.email ?? null,
  };
}
