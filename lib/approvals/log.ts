import { createLogger } from "@/lib/log";

/** The approvals' own log lines (what cannot go into the audit, e.g. a failed audit write). */
export const approvalsLog = createLogger("approvals");
