import type { Metadata } from "next";
import Link from "next/link";
import { formatTime } from "@/components/format";
import { Badge } from "@/components/ui/badge";
import { EmptyState } from "@/components/ui/empty-state";
import { PageHeader } from "@/components/ui/page-header";
import { Table, Td } from "@/components/ui/table";
import { requirePageActor } from "@/lib/auth/current";
import { getDb } from "@/lib/db/client";
import { listTasks } from "@/lib/tasks/list";

export const metadata: Metadata = { title: "Tasks" };

export default async function TasksPage() {
  const actor = await requirePageActor("read");
  const tasks = await listTasks(getDb(), actor);
  return (
    <>
      <PageHeader title="Tasks" description="Each task gives one agent a purpose, an allowlist and a lifetime; its token is the agent's only credential." />
      {tasks.length === 0 ? (
        <EmptyState title="No tasks yet">Tasks are created per assignment of an agent. None exist yet.</EmptyState>
      ) : (
        <Table head={["Purpose", "Agent", "Status", "Created", "Expires"]}>
          {tasks.map((t) => (
            <tr key={t.id}>
              <Td>{t.purpose}</Td>
              <Td>
                <Link className="text-brand-700 hover:underline" href={`/agents/${t.agent.id}`}>
                  {t.agent.name}
                </Link>
              </Td>
              <Td>
                <Badge tone={t.status === "active" ? "green" : "slate"}>{t.status}</Badge>
              </Td>
              <Td>{formatTime(t.createdAt)}</Td>
              <Td>{formatTime(t.expiresAt)}</Td>
            </tr>
          ))}
        </Table>
      )}
    </>
  );
}
