import type { ReactNode } from "react";
import type { LinePart } from "@/lib/approvals/plain-language";
import { visible } from "@/lib/audit/view";

/**
 * A value the agent controls (path, operation, resource, body): shown as inert text in its own
 * marked box, never as part of Bulkhead's sentences. React escapes it; the marker says whose
 * words these are, so "already approved by security" reads as the agent's claim. Text is shown
 * through `visible`: a control, bidirectional or invisible character appears as its \u escape,
 * so a resource cannot turn itself around, hide a part, or break the line it stands on (a block
 * keeps its line feeds and tabs). Callers that pass elements apply `visible` to their text.
 */
export function AgentData({ children: given, block = false }: { children: ReactNode; block?: boolean }) {
  const children = typeof given === "string" ? visible(given, { keepLines: block }) : given;
  const cls = "rounded border border-dashed border-amber-500 bg-amber-50 px-1 font-mono text-xs text-amber-950";
  const label = (
    <span className="mr-1 select-none rounded bg-amber-700 px-1 font-sans text-[10px] font-bold uppercase tracking-wide text-white" aria-label="from the agent:">
      agent
    </span>
  );
  if (block) {
    return (
      <div data-agent-data="" className={`${cls} block`}>
        {label}
        <pre className="mt-1 whitespace-pre-wrap break-all">{children}</pre>
      </div>
    );
  }
  return (
    <span data-agent-data="" className={`${cls} inline-block break-all`} title="This value comes from the agent's request">
      {label}
      {children}
    </span>
  );
}

/** A plain-language line: Bulkhead's words as text, the request's values as marked data. */
export function PlainLine({ parts }: { parts: LinePart[] }) {
  return (
    <span data-testid="plain-line">
      {parts.map((p, i) => ("data" in p ? <AgentData key={i}>{p.data}</AgentData> : <span key={i}>{p.text}</span>))}
    </span>
  );
}
