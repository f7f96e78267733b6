import { visible } from "@/lib/audit/view";

/**
 * Text that an agent (or anyone outside Bulkhead) chose: rendered as text by React (HTML-escaped),
 * with control and bidirectional-override characters made visible, and marked for readers.
 */
export function AgentText({ text, className = "" }: { text: string | null | undefined; className?: string }) {
  if (text === null || text === undefined || text === "") return null;
  return (
    <span data-agent-text="" className={`break-all ${className}`}>
      {visible(text)}
    </span>
  );
}
