import type { TaskReport } from "@/lib/reports/task-report";

export function VerificationBlock({ v }: { v: TaskReport["verification"] }) {
  const cp = v.checkpoint;
  return (
    <dl className="grid max-w-4xl grid-cols-[max-content_1fr] gap-x-4 gap-y-1 rounded-lg bg-white p-4 text-sm shadow-sm ring-1 ring-slate-200" data-testid="report-verification">
      <dt className="font-semibold">Chain events</dt>
      <dd>{v.events} events of this task, seq {v.firstSeq ?? "-"} to {v.lastSeq ?? "-"}</dd>
      <dt className="font-semibold">First hash</dt>
      <dd className="break-all font-mono text-xs">{v.firstHash ?? "-"}</dd>
      <dt className="font-semibold">Last hash</dt>
      <dd className="break-all font-mono text-xs">{v.lastHash ?? "-"}</dd>
      <dt className="font-semibold">Covering checkpoint</dt>
      <dd>
        {cp ? (
          <>
            {cp.number ? `#${cp.number} ` : ""}at seq {cp.seq} ({cp.keyId}); signature {cp.signatureValid === null ? "not checked" : cp.signatureValid ? "valid" : "INVALID"};{" "}
            {cp.matchesChain ? "matches the chain" : "DOES NOT match the chain"}
          </>
        ) : (
          "none yet: the newest events are covered by the next checkpoint"
        )}
      </dd>
      <dt className="font-semibold">Verified</dt>
      <dd className={v.result.ok ? "text-green-700" : "font-semibold text-red-700"} data-testid="report-verification-result">
        {v.result.ok ? `OK from seq ${v.firstSeq ?? 1} through seq ${v.result.verifiedThroughSeq}` : `BROKEN at seq ${v.result.firstBadSeq}: ${v.result.problem}. ${v.result.detail}`}
      </dd>
    </dl>
  );
}
