"use client";

import { useRouter } from "next/navigation";
import { useEffect, useState } from "react";
import { APPROVALS_EVENT, type ApprovalsChange } from "./live-refresh";
import { signInPath } from "@/lib/auth/return-to";

/** How long to wait before opening the stream again when the server refused it (e.g. too many streams). */
const REOPEN_MS = 5000;

/**
 * The number of approvals waiting, beside "Approvals" in the navigation on every page, kept
 * current by one server-sent event stream per page; each change is passed on to the page
 * (LiveRefresh) so open lists and cards update without a reload.
 *
 * A page left open must never go quietly stale: when the server ends the stream and refuses to
 * open it again (the browser gives up on a non-200 answer), the badge asks whether the session
 * still exists. A session that ended (idle limit, lifetime, signed out elsewhere, user disabled)
 * takes the page to the sign-in page, so an approver watching it sees they must sign in again
 * instead of a list that no longer moves; otherwise the stream is opened again a little later.
 */
export function PendingBadge({ initial }: { initial: number }) {
  const [pending, setPending] = useState(initial);
  const router = useRouter();
  useEffect(() => {
    let source: EventSource | null = null;
    let reopen: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;
    const open = () => {
      const stream = new EventSource("/api/v1/approvals/events");
      source = stream;
      stream.addEventListener("approvals", (e) => {
        let version: string | null = null;
        try {
          const data = JSON.parse((e as MessageEvent<string>).data) as { pending?: unknown; version?: unknown };
          if (typeof data.pending === "number") setPending(data.pending);
          if (typeof data.version === "string") version = data.version;
        } catch {
          return;
        }
        // Every event, the first of each stream included: the page compares the version with the
        // one it was rendered from (LiveRefresh), so a change between its render and the stream's
        // opening (or while the stream was reconnecting) is not missed.
        window.dispatchEvent(new CustomEvent<ApprovalsChange>(APPROVALS_EVENT, { detail: { version } }));
      });
      stream.addEventListener("error", () => {
        // CONNECTING: the browser retries by itself. CLOSED: it gave up (the server refused).
        if (stopped || stream.readyState !== EventSource.CLOSED) return;
        void fetch("/api/v1/me", { credentials: "same-origin", cache: "no-store" })
          .then((r) => {
            if (stopped) return;
            // Signed out: to the sign-in page, which brings the person back to this page.
            if (r.status === 401) router.replace(signInPath(`${window.location.pathname}${window.location.search}`));
            else reopen = setTimeout(open, REOPEN_MS);
          })
          .catch(() => {
            if (!stopped) reopen = setTimeout(open, REOPEN_MS);
          });
      });
    };
    open();
    return () => {
      stopped = true;
      clearTimeout(reopen);
      source?.close();
    };
  }, [router]);
  if (pending === 0) return <span data-testid="pending-badge" data-count="0" className="sr-only">, none waiting</span>;
  return (
    <span data-testid="pending-badge" data-count={pending}>
      {/* The number alone says little when read out with the link: the link reads "Approvals, N waiting". */}
      <span aria-hidden="true" className="ml-2 rounded-full bg-red-600 px-2 py-0.5 text-xs font-bold text-white">
        {pending}
      </span>
      <span className="sr-only">, {pending} waiting</span>
    </span>
  );
}
