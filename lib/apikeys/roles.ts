import { roleCan, type Permission, type Role } from "@/lib/auth/roles";

// Written as a record so that adding a Permission without listing it here fails to compile.
const EVERY_PERMISSION = Object.keys({
  read: true,
  "agents:write": true,
  "tasks:write": true,
  "approvals:decide": true,
  "credentials:write": true,
  "users:read": true,
  "users:write": true,
  "settings:write": true,
} satisfies Record<Permission, true>) as Permission[];

/** Whether `role` grants nothing that `ceiling` does not. */
export function roleWithin(role: Role, ceiling: Role): boolean {
  return EVERY_PERMISSION.every((p) => !roleCan(role, p) || roleCan(ceiling, p));
}

/** The less privileged of two roles, or null if neither is within the other. */
export function lesserRole(a: Role, b: Role): Role | null {
  if (roleWithin(a, b)) return a;
  if (roleWithin(b, a)) return b;
  return null;
}
