import type { Metadata } from "next";
import Link from "next/link";
import { notFound } from "next/navigation";
import { AuditEventDetailView } from "@/components/audit/event-detail";
import { PageHeader } from "@/components/ui/page-header";
import { chainStatus } from "@/lib/audit/chain-status";
import { getAuditEvent } from "@/lib/audit/query";
import { dashboardCheckpointKeys } from "@/lib/audit/trusted-keys";
import { requirePageActor } from "@/lib/auth/current";
import { getDb } from "@/lib/db/client";
import { isAppError } from "@/lib/errors/app-error";

export const metadata: Metadata = { title: "Audit event" };

export default async function AuditEventPage({ params }: { params: Promise<{ seq: string }> }) {
  const actor = await requirePageActor("read");
  const { seq } = await params;
  const db = getDb();
  const keys = dashboardCheckpointKeys();
  const detail = await getAuditEvent(db, actor, seq, { via: "dashboard", checkpointKeys: keys }).catch((error: unknown) => {
    if (isAppError(error) && error.code === "NOT_FOUND") notFound();
    throw error;
  });
  const status = await chainStatus(db, { checkpointKeys: keys });
  return (
    <>
      <PageHeader
        title={`Event #${detail.chain.seq}`}
        description={
          <>
            <span className="font-mono">{detail.event.type}</span> ·{" "}
            <Link className="text-brand-700 hover:underline" href="/audit">
              back to the audit log
            </Link>
          </>
        }
      />
      <AuditEventDetailView detail={detail} status={status} />
    </>
  );
}
