import { StatusMessage } from "@/components/ui/status-message";

/** A dashboard page's notFound(): shown inside the dashboard layout's <main>. */
export default function NotFound() {
  return (
    <StatusMessage code="404" title="Not found">
      There is nothing here, or it was removed.
    </StatusMessage>
  );
}
