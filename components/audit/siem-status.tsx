import type { SiemStatus } from "@/lib/audit/siem/shipper";

/** One line on the Audit page: how far behind the SIEM stream is, and why when it is failing. */
export function SiemStatusLine({ status }: { status: (SiemStatus & { updatedAt: string }) | null }) {
  if (!status) return null;
  const behind = status.lagEvents > 0;
  return (
    <p data-testid="siem-status" className={`mb-4 text-sm ${status.lastError ? "text-red-700" : behind ? "text-amber-700" : "text-slate-600"}`}>
      SIEM stream to {status.target}: {behind ? `${status.lagEvents} events behind (oldest ${Math.round(status.lagSeconds)} s old)` : "caught up"}, last accepted seq {status.cursorSeq}
      {status.lastError ? `; failing: ${status.lastError} (events wait and are retried)` : ""}; as of {status.updatedAt}.
    </p>
  );
}
