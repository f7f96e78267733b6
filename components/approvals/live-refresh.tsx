"use client";

import { useRouter } from "next/navigation";
import { useEffect, useRef } from "react";

export const APPROVALS_EVENT = "bulkhead:approvals";

/** What the approvals stream (opened by the nav badge) says: the version of what the viewer may see. */
export interface ApprovalsChange {
  version: string | null;
}

/**
 * Re-reads the page's server data when the approvals stream says what the viewer may see is not
 * what the page was rendered from. `version` is the page's own (approvalsPulse, read before its
 * data): the stream's first event is compared with it too, so a request held between the page's
 * render and the stream's opening appears without a reload. An event without a version (an older
 * dashboard process) refreshes as before.
 */
export function LiveRefresh({ version }: { version: string }) {
  const router = useRouter();
  const shown = useRef(version);
  useEffect(() => {
    shown.current = version;
  }, [version]);
  useEffect(() => {
    const onChange = (event: Event) => {
      const next = (event as CustomEvent<ApprovalsChange | undefined>).detail?.version ?? null;
      if (next !== null && next === shown.current) return;
      if (next !== null) shown.current = next;
      router.refresh();
    };
    window.addEventListener(APPROVALS_EVENT, onChange);
    return () => window.removeEventListener(APPROVALS_EVENT, onChange);
  }, [router]);
  return null;
}
