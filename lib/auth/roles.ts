import type { Role } from "@/lib/generated/prisma/enums";

export type { Role };
export const ROLES = ["admin", "approver", "auditor"] as const satisfies readonly Role[];

/**
 * What each role may do. admin: everything; approver: decide escalations and read;
 * auditor: read only. Every route handler and server action checks one of these itself.
 */
export type Permission =
  | "read" // agents, tasks, approvals, audit
  | "agents:write"
  | "tasks:write"
  | "approvals:decide"
  | "credentials:write"
  | "users:read"
  | "users:write"
  | "settings:write";

const GRANTS: Record<Role, ReadonlySet<Permission>> = {
  admin: new Set<Permission>([
    "read",
    "agents:write",
    "tasks:write",
    "approvals:decide",
    "credentials:write",
    "users:read",
    "users:write",
    "settings:write",
  ]),
  approver: new Set<Permission>(["read", "approvals:decide"]),
  auditor: new Set<Permission>(["read"]),
};

export function roleCan(role: Role, permission: Permission): boolean {
  return GRANTS[role].has(permission);
}

export function isRole(value: unknown): value is Role {
  return typeof value === "string" && (ROLES as readonly string[]).includes(value);
}
