import { StatusMessage } from "@/components/ui/status-message";

/** forbidden() is called only by dashboard pages (requirePageActor): this renders inside the dashboard layout's <main>. */
export default function Forbidden() {
  return (
    <StatusMessage code="403" tone="red" title="Your role does not allow this">
      Ask an admin if you need access.
    </StatusMessage>
  );
}
