import type { Metadata } from "next";
import { formatTime } from "@/components/format";
import { Badge } from "@/components/ui/badge";
import { PageHeader } from "@/components/ui/page-header";
import { Table, Td } from "@/components/ui/table";
import { CreateUserForm } from "@/components/users/create-user-form";
import { UserRowActions } from "@/components/users/user-row-actions";
import { requirePageActor } from "@/lib/auth/current";
import { getDb } from "@/lib/db/client";
import { listUsers } from "@/lib/users/users";
import { createUserAction, updateUserAction } from "./actions";

export const metadata: Metadata = { title: "Users" };

export default async function UsersPage() {
  const actor = await requirePageActor("users:read");
  const users = await listUsers(getDb(), actor);
  return (
    <>
      <PageHeader title="Users" description="People who use the dashboard. Role changes and disabling take effect on their next request." />
      <CreateUserForm action={createUserAction} />
      <Table label="Users" head={["Email", "Role", "Status", "Last sign-in", ""]}>
        {users.map((u) => (
          <tr key={u.id}>
            <Td>
              {u.email}
              {u.sso ? <span className="ml-2 text-xs text-slate-500">SSO</span> : null}
            </Td>
            <Td>
              <Badge tone={u.role === "admin" ? "blue" : "slate"}>{u.role}</Badge>
            </Td>
            <Td>{u.disabled ? <Badge tone="red">disabled</Badge> : <Badge tone="green">active</Badge>}</Td>
            <Td>{formatTime(u.lastLoginAt)}</Td>
            <Td>
              <UserRowActions action={updateUserAction} id={u.id} role={u.role} disabled={u.disabled} />
            </Td>
          </tr>
        ))}
      </Table>
    </>
  );
}
