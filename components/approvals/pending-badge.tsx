"use client";

import { useEffect, useState } from "react";
import { APPROVALS_EVENT } from "./live-refresh";

/**
 * The number of approvals waiting, beside "Approvals" in the navigation on every page, kept
 * current by one server-sent event stream per page; each change is passed on to the page
 * (LiveRefresh) so open lists and cards update without a reload.
 */
export function PendingBadge({ initial }: { initial: number }) {
  const [pending, setPending] = useState(initial);
  useEffect(() => {
    const source = new EventSource("/api/v1/approvals/events");
    let first = true;
    source.addEventListener("approvals", (e) => {
      try {
        const data = JSON.parse((e as MessageEvent<string>).data) as { pending?: unknown };
        if (typeof data.pending === "number") setPending(data.pending);
      } catch {
        return;
      }
      // The first event only states what the server rendered; later ones are changes.
      if (!first) window.dispatchEvent(new Event(APPROVALS_EVENT));
      first = false;
    });
    return () => source.close();
  }, []);
  if (pending === 0) return <span data-testid="pending-badge" data-count="0" className="sr-only">no approvals waiting</span>;
  return (
    <span data-testid="pending-badge" data-count={pending} aria-label={`${pending} waiting`} className="ml-2 rounded-full bg-red-600 px-2 py-0.5 text-xs font-bold text-white">
      {pending}
    </span>
  );
}
