/**
 * Reading users. Kept apart from creating them and changing roles (./users.ts, which loads the
 * password hasher): listing users, on the dashboard's Users page or from `bulkhead user list`, is
 * one SQL query on either driver, and the password hash never leaves the database (only whether
 * there is one).
 */
import { auditSql, type AuditDb } from "@/lib/audit/sql";
import { assertCan, type Actor } from "@/lib/auth/actor";
import type { Role } from "@/lib/auth/roles";
import { dateOf, epochMs } from "@/lib/db/view-sql";

export interface UserSummary {
  id: string;
  email: string;
  name: string | null;
  role: Role;
  disabled: boolean;
  lastLoginAt: Date | null;
  createdAt: Date;
  /** Signs in only through OIDC (no password). */
  sso: boolean;
}

interface UserRow {
  id: string;
  email: string;
  name: string | null;
  role: Role;
  disabled: boolean;
  last_login_at: string | null;
  created_at: string;
  sso: boolean;
}

const LIST_SQL = `SELECT id::text, email, name, role::text, disabled_at IS NOT NULL AS disabled,
  ${epochMs("last_login_at")} AS last_login_at, ${epochMs("created_at")} AS created_at, password_hash IS NULL AS sso
FROM users ORDER BY email ASC`;

/** Every user by email, for those who may read users (admins). */
export async function listUsers(db: AuditDb, actor: Actor): Promise<UserSummary[]> {
  assertCan(actor, "users:read");
  const rows = await auditSql(db).query<UserRow>(LIST_SQL);
  return rows.map((r) => ({
    id: r.id,
    email: r.email,
    name: r.name,
    role: r.role,
    disabled: r.disabled,
    lastLoginAt: dateOf(r.last_login_at),
    createdAt: dateOf(r.created_at),
    sso: r.sso,
  }));
}
