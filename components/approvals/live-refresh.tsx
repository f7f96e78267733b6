"use client";

import { useRouter } from "next/navigation";
import { useEffect } from "react";

export const APPROVALS_EVENT = "bulkhead:approvals";

/** Re-reads the page's server data when the approvals stream (opened by the nav badge) says something changed. */
export function LiveRefresh() {
  const router = useRouter();
  useEffect(() => {
    const onChange = () => router.refresh();
    window.addEventListener(APPROVALS_EVENT, onChange);
    return () => window.removeEventListener(APPROVALS_EVENT, onChange);
  }, [router]);
  return null;
}
