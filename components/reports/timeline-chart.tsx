import type { TaskReport } from "@/lib/reports/task-report";

const FILL: Record<string, string> = { allow: "fill-green-600", approved: "fill-teal-600", deny: "fill-red-700", hold: "fill-amber-600", reject: "fill-red-900" };

/** Decisions over the task's lifetime, stacked by outcome (an inline SVG: no script, no style attribute). */
export function TimelineChart({ timeline }: { timeline: NonNullable<TaskReport["timeline"]> }) {
  const width = 720;
  const height = 120;
  const totals = timeline.buckets.map((b) => Object.values(b).reduce((s, n) => s + n, 0));
  const max = Math.max(1, ...totals);
  const bw = width / timeline.buckets.length;
  return (
    <figure className="max-w-3xl">
      <svg viewBox={`0 0 ${width} ${height}`} className="h-32 w-full rounded bg-white ring-1 ring-slate-200" role="img" aria-label="Decisions over time, by outcome" data-testid="report-timeline">
        {timeline.buckets.map((b, i) => {
          let top = height;
          return Object.entries(b)
            .sort()
            .map(([outcome, n]) => {
              const h = (n / max) * (height - 4);
              top -= h;
              return (
                <rect key={`${i}-${outcome}`} x={i * bw + 0.5} y={top} width={Math.max(1, bw - 1)} height={h} className={FILL[outcome] ?? "fill-slate-500"}>
                  <title>{`${outcome}: ${n}`}</title>
                </rect>
              );
            });
        })}
      </svg>
      <figcaption className="mt-1 text-xs text-slate-500">
        {timeline.from.toISOString()} to {timeline.to.toISOString()}; the highest bar is {max} decisions.
      </figcaption>
    </figure>
  );
}
