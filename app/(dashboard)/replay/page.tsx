import type { Metadata } from "next";
import { formatTime } from "@/components/format";
import { ReplayMatrix } from "@/components/replay/replay-matrix";
import { Badge } from "@/components/ui/badge";
import { EmptyState } from "@/components/ui/empty-state";
import { PageHeader } from "@/components/ui/page-header";
import { requirePageActor } from "@/lib/auth/current";
import { getDb } from "@/lib/db/client";
import { getLastReplayRun } from "@/lib/replay/runs";

export const metadata: Metadata = { title: "Replay" };

export default async function ReplayPage() {
  const actor = await requirePageActor("read");
  const run = await getLastReplayRun(getDb(), actor);
  return (
    <>
      <PageHeader
        title="Incident replay"
        description="The PocketOS incident replayed with every combination of Bulkhead's three layers switched on and off, for an agent that behaves as in the incident and one that tries to evade the proxy. Run it with `sudo npm run replay`; this page shows the last run."
      />
      {!run ? (
        <EmptyState title="The replay has not run here yet">Run `sudo npm run replay` (or `bulkhead replay`) on this machine; its result appears here.</EmptyState>
      ) : (
        <>
          <div className="mb-4 flex flex-wrap items-center gap-3 text-sm" data-testid="replay-run">
            <Badge tone={run.passed ? "green" : "red"}>{run.passed ? "every cell as expected" : "cells differ from the expected table"}</Badge>
            <span>ran {formatTime(run.finishedAt)}</span>
            <span>
              commit <span className="font-mono">{run.commit ? run.commit.slice(0, 12) : "unknown"}</span>
            </span>
          </div>
          {run.cells ? <ReplayMatrix cells={run.cells} /> : <pre className="whitespace-pre-wrap rounded bg-white p-4 text-xs">{run.tableMarkdown}</pre>}
        </>
      )}
    </>
  );
}
