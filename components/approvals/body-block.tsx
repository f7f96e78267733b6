import type { BodyView } from "@/lib/approvals/body-view";
import { visible } from "@/lib/audit/view";
import { AgentData } from "./agent-data";

/** The request body, pretty-printed, with the dangerous parts marked. */
export function BodyBlock({ body, fullHref }: { body: BodyView; fullHref: string }) {
  if (body.format === "empty") return <p className="text-sm text-slate-600">No body.</p>;
  if (body.format === "withheld") {
    return (
      <p className="text-sm text-slate-600" data-testid="body-withheld">
        A body of {body.size} bytes, not shown: only people who may decide approvals read what a held request would send.
      </p>
    );
  }
  return (
    <div data-testid="request-body" data-format={body.format}>
      <p className="mb-1 text-xs text-slate-600">
        {body.format.toUpperCase()} body, {body.size} bytes. Highlighted: operations and resources that delete or cannot be undone, and keys that ask for destruction.
      </p>
      <AgentData block>
        {body.segments.map((s, i) =>
          s.mark ? (
            <mark key={i} data-testid="danger" className="rounded bg-red-200 px-0.5 font-bold text-red-900">
              {visible(s.text, { keepLines: true })}
            </mark>
          ) : (
            <span key={i}>{visible(s.text, { keepLines: true })}</span>
          ),
        )}
      </AgentData>
      {body.truncated ? (
        <p className="mt-1 text-sm">
          Showing the first {body.shown} characters. The approval covers the whole body.{" "}
          {body.marksBeyond > 0 ? (
            <strong className="text-red-800" data-testid="marks-beyond">
              {body.marksBeyond === 1 ? "1 highlighted part lies" : `${body.marksBeyond} highlighted parts lie`} beyond what is shown.{" "}
            </strong>
          ) : null}
          <a className="underline" href={fullHref}>
            Show all
          </a>
        </p>
      ) : null}
    </div>
  );
}
