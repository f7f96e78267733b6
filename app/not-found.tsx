import { StatusMessage } from "@/components/ui/status-message";

/** An address nothing answers, outside the dashboard (app/(dashboard)/not-found.tsx is inside it). */
export default function NotFound() {
  return (
    <main>
      <StatusMessage code="404" title="Not found">
        There is nothing here, or it was removed.
      </StatusMessage>
    </main>
  );
}
