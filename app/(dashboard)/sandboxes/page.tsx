import type { Metadata } from "next";
import { SandboxTable } from "@/components/sandboxes/sandbox-table";
import { EmptyState } from "@/components/ui/empty-state";
import { PageHeader } from "@/components/ui/page-header";
import { requirePageActor } from "@/lib/auth/current";
import { roleCan } from "@/lib/auth/roles";
import { getDb } from "@/lib/db/client";
import { ListPager } from "@/components/ui/list-pager";
import { isAppError } from "@/lib/errors/app-error";
import { listSandboxesPage } from "@/lib/sandboxes/sandboxes";
import { stopSandboxAction } from "./actions";

export const metadata: Metadata = { title: "Sandboxes" };

/** Sandboxes a page of the list shows (the API's pages hold up to 500). */
const PAGE_SIZE = 100;

export default async function SandboxesPage({ searchParams }: { searchParams: Promise<{ state?: string; cursor?: string }> }) {
  const actor = await requirePageActor("read");
  const { state, cursor } = await searchParams;
  const all = state === "all";
  // A page position that is not one is said on the page, not a server error.
  const { sandboxes, nextCursor, problem } = await listSandboxesPage(getDb(), actor, { live: !all, cursor, limit: PAGE_SIZE }).then(
    (page) => ({ sandboxes: page.items, nextCursor: page.nextCursor, problem: null }),
    (error: unknown) => {
      if (isAppError(error) && error.code === "INVALID_INPUT") return { sandboxes: [], nextCursor: null, problem: error.userMessage };
      throw error;
    },
  );
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
      {problem ? (
        <p role="alert" className="mb-4 text-sm text-red-700">
          {problem}
        </p>
      ) : sandboxes.length === 0 && cursor ? (
        <p className="text-sm text-slate-600">No older sandboxes.</p>
      ) : sandboxes.length === 0 ? (
        <EmptyState title={all ? "No sandboxes yet" : "No live sandboxes"}>Sandboxes appear here while an agent runs in one.</EmptyState>
      ) : (
        <SandboxTable sandboxes={sandboxes} stop={roleCan(actor.role, "tasks:write") ? stopSandboxAction : null} />
      )}
      {problem ? null : <ListPager base="/sandboxes" filters={{ state: all ? "all" : undefined }} cursor={cursor} nextCursor={nextCursor} nextLabel="Older sandboxes" endLabel="Oldest sandbox reached." />}
    </>
  );
}
