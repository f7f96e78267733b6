import Link from "next/link";
import { formatTime } from "@/components/format";
import type { ChainStatus } from "@/lib/audit/chain-status";

/** The hash chain's status at the top of the Audit page: green when verified, red when broken. */
export function ChainStatusBanner({ status }: { status: ChainStatus }) {
  const running = status.verifying ? " A newer check is running." : "";
  const signatures = status.signaturesChecked ? "checkpoint signatures checked" : "checkpoint signatures not checked (the dashboard has no verification key)";
  if (status.state === "broken" && status.broken) {
    return (
      <div role="alert" data-testid="chain-status" data-state="broken" className="mb-4 rounded-md bg-red-50 px-4 py-3 text-sm text-red-900 ring-1 ring-red-600/30">
        <p className="font-semibold">
          Audit chain broken at{" "}
          <Link className="underline" href={`/audit/${status.broken.firstBadSeq}`}>
            seq {status.broken.firstBadSeq}
          </Link>
          : {status.broken.problem.replace(/_/g, " ")}.
        </p>
        <p className="mt-1">{status.broken.detail}</p>
        <p className="mt-1 text-red-800">
          Found {formatTime(status.checkedAt)}.{status.verifiedThroughSeq ? ` Events up to seq ${status.verifiedThroughSeq} verified.` : ""} Run `bulkhead audit verify` for the full report.{running}
        </p>
      </div>
    );
  }
  if (status.state === "verified") {
    return (
      <p data-testid="chain-status" data-state="verified" className="mb-4 rounded-md bg-emerald-50 px-4 py-2 text-sm text-emerald-900 ring-1 ring-emerald-600/20">
        Hash chain verified {status.retained ? `from seq ${status.retained.firstKeptSeq} ` : ""}up to seq {status.verifiedThroughSeq} at {formatTime(status.checkedAt)}; {signatures}.{running}
        {status.retained ? (
          <span data-testid="chain-retention" className="mt-1 block text-emerald-800">
            Events before seq {status.retained.firstKeptSeq} were removed by retention and are in the archive; the kept chain is anchored on checkpoint{" "}
            {status.retained.checkpointNumber} ({status.retained.archivedCheckpoints} earlier checkpoint{status.retained.archivedCheckpoints === 1 ? "" : "s"} archived).
          </span>
        ) : null}
      </p>
    );
  }
  if (status.state === "empty") {
    return (
      <p data-testid="chain-status" data-state="empty" className="mb-4 rounded-md bg-slate-50 px-4 py-2 text-sm text-slate-700 ring-1 ring-slate-300">
        The audit chain is empty.
      </p>
    );
  }
  return (
    <p data-testid="chain-status" data-state={status.state} className="mb-4 rounded-md bg-amber-50 px-4 py-2 text-sm text-amber-900 ring-1 ring-amber-600/20">
      {status.state === "error" ? `The chain could not be verified: ${status.error ?? "unknown error"}.` : "Verifying the hash chain… reload in a moment for the result."}
    </p>
  );
}
