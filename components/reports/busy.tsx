import { PageHeader } from "@/components/ui/page-header";

/** Shown instead of a task report when every report slot is busy (lib/reports/slots.ts). */
export function ReportsBusy({ message }: { message: string }) {
  return (
    <>
      <PageHeader title="Task report" description="Reports verify the audit chain over the task's events, which takes a while for a busy task." />
      <p role="status" className="text-sm text-amber-800" data-testid="reports-busy">
        {message} Reload this page to try again.
      </p>
    </>
  );
}
