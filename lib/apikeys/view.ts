import type { Prisma } from "@/lib/generated/prisma/client";
import type { Role } from "@/lib/auth/roles";
import { displayPrefix } from "./format";

/** An API key as listed: never its hash, never the key. */
export interface ApiKeyView {
  id: string;
  name: string;
  /** `bk_<prefix>_…`: enough to recognise a key, useless to use it. */
  prefix: string;
  role: Role;
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
  createdBy: { select: { email: true } },
} as const satisfies Prisma.ApiKeySelect;

type Row = Prisma.ApiKeyGetPayload<{ select: typeof apiKeySelect }>;

export function toApiKeyView(row: Row, now = new Date()): ApiKeyView {
  return {
    id: row.id,
    name: row.name,
    prefix: displayPrefix(row.prefix),
    role: row.role,
    status: row.revokedAt ? "revoked" : row.expiresAt && row.expiresAt <= now ? "expired" : "active",
    createdAt: row.createdAt,
    expiresAt: row.expiresAt,
    lastUsedAt: row.lastUsedAt,
    revokedAt: row.revokedAt,
    createdBy: row.createdBy?.email ?? null,
  };
}
