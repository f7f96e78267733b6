import { z } from "zod";
import { ROLES } from "@/lib/auth/roles";

/** Response shapes, for documentation only (handlers return typed domain views). */

export const dateTime = z.string().meta({ format: "date-time" });
export const nullableDateTime = dateTime.nullable();

export const actorSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("user"), userId: z.uuid(), email: z.string(), role: z.enum(ROLES) }),
  z.object({ kind: z.literal("api_key"), apiKeyId: z.uuid(), role: z.enum(ROLES), createdById: z.uuid().nullable() }),
]);

export const agentSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  description: z.string(),
  status: z.enum(["active", "suspended"]),
  suspendedAt: nullableDateTime,
  createdAt: dateTime,
  updatedAt: dateTime,
  owner: z.object({ id: z.uuid(), email: z.string(), name: z.string().nullable() }),
});

export const credentialSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  scheme: z.enum(["http", "https"]),
  host: z.string(),
  port: z.number().int(),
  service: z.string().meta({ description: "scheme://host:port" }),
  serviceId: z.string().nullable().meta({ description: "The semantic service it serves (`railway`, `github`, a custom id, `unknown`); null: unbound, never injected." }),
  environments: z.array(z.string()).meta({ description: "Environments it serves (`*`: every environment of its service); empty: never injected." }),
  problem: z.string().nullable().optional().meta({ description: "In lists: why the proxy would never inject it as it stands (unbound, or its host now belongs to another service)." }),
  headerName: z.string(),
  headerTemplate: z.string().meta({ description: "Contains the placeholder, never the secret." }),
  secret: z.literal("••••").meta({ description: "Always this mask: secrets are never returned." }),
  createdAt: dateTime,
  rotatedAt: nullableDateTime,
  lastUsedAt: nullableDateTime,
  createdBy: z.string().nullable(),
});

export const apiKeySchema = z.object({
  id: z.uuid(),
  name: z.string(),
  prefix: z.string().meta({ description: "bk_<prefix>_…: identifies the key, cannot be used as one." }),
  role: z.enum(ROLES),
  actsAs: z.enum(ROLES).nullable().meta({ description: "The role the key acts with now: its role lowered to its creator's current role; null when it is refused (its creator disabled)." }),
  status: z.enum(["active", "expired", "revoked"]),
  createdAt: dateTime,
  expiresAt: nullableDateTime,
  lastUsedAt: nullableDateTime,
  revokedAt: nullableDateTime,
  createdBy: z.string().nullable(),
});

export const sessionSchema = z.object({
  id: z.uuid(),
  createdAt: dateTime,
  lastSeenAt: dateTime.meta({ description: "Written at most once a minute; the idle limit (BULKHEAD_SESSION_IDLE_MINUTES) is measured from it." }),
  expiresAt: dateTime.meta({ description: "The end of its absolute lifetime (BULKHEAD_SESSION_HOURS)." }),
  authenticatedAt: dateTime.meta({ description: "When the person last proved who they are in it (sign-in or re-authentication)." }),
  authMethod: z.enum(["password", "oidc"]),
  ip: z.string().nullable().meta({ description: "The client address it was opened from, as the sign-in throttle determines it (X-Forwarded-For only from BULKHEAD_TRUSTED_PROXIES)." }),
  userAgent: z.string().nullable(),
  current: z.boolean().meta({ description: "The session making this request." }),
});

/** The page parameters of a keyset-paged list (lib/db/list-page.ts). */
export const pageQuery = {
  cursor: z.string().optional().meta({ description: "`nextCursor` of the previous page; absent: the first page." }),
  limit: z.string().optional().meta({ description: "Rows per page, 1-500 (default 500)." }),
};

/** `nextCursor` of a keyset-paged list: null on the last page. */
export const nextCursor = z.string().nullable().meta({ description: "Pass as `cursor` for the next page; null: this is the last page. Pages never skip or repeat a row, however many are added meanwhile." });
