import type { Metadata } from "next";
import { SandboxTable } from "@/components/sandboxes/sandbox-table";
import { EmptyState } from "@/components/ui/empty-state";
import { PageHeader } from "@/components/ui/page-header";
import { requirePageActor } from "@/lib/auth/current";
import { roleCan } from "@/lib/auth/roles";
import { getDb } from "@/lib/db/client";
import { listSandboxes } from "@/lib/sandboxes/sandboxes";
import { stopSandboxAction } from "./actions";

export const metadata: Metadata = { title: "Sandboxes" };

export default async function SandboxesPage({ searchParams }: { searchParams: Promise<{ state?: string }> }) {
  const actor = await requirePageActor("read");
  const { state } = await searchParams;
  const all = state === "all";
  const sandboxes = await listSandboxes(getDb(), actor, { live: !all });
  return (
    <>
      <PageHeader
        title="Sandboxes"
        description="Agents whose network reaches nothing but Bulkhead. Start one with `sudo npx bulkhead sandbox run --task ID -- COMMAND`; stopping it closes its connections and kills what runs inside."
      />
      <p className="mb-4 text-sm">
        <a className="text-brand-700 hover:underline" href={all ? "/sandboxes" : "/sandboxes?state=all"}>
          {all ? "Show live sandboxes only" : "Show removed sandboxes too"}
        </a>
      </p>
      {sandboxes.length === 0 ? (
        <EmptyState title={all ? "No sandboxes yet" : "No live sandboxes"}>Sandboxes appear here while an agent runs in one.</EmptyState>
      ) : (
        <SandboxTable sandboxes={sandboxes} stop={roleCan(actor.role, "tasks:write") ? stopSandboxAction : null} />
      )}
    </>
  );
}
