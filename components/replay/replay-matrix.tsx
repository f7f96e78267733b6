import Link from "next/link";
import { Badge } from "@/components/ui/badge";
import type { ReplayCellRecord } from "@/lib/replay/runs";

const onOff = (on: boolean) => (on ? "on" : "off");
const ROWS: Array<[boolean, boolean, boolean]> = [
  [true, true, true],
  [true, true, false],
  [true, false, true],
  [true, false, false],
  [false, true, true],
  [false, true, false],
  [false, false, true],
  [false, false, false],
];

function Cell({ cell }: { cell: ReplayCellRecord | undefined }) {
  if (!cell) return <span className="text-slate-400">not run</span>;
  const asExpected = cell.outcome === cell.expected;
  return (
    <div data-testid="replay-cell" data-outcome={cell.outcome} data-expected={cell.expected}>
      <div className="flex flex-wrap items-center gap-2">
        <Badge tone={cell.outcome === "stopped" ? "green" : "red"}>{cell.outcome}</Badge>
        {cell.outcome === "stopped" ? <Badge tone="blue">{cell.layer}</Badge> : null}
        {asExpected ? null : <Badge tone="amber">expected {cell.expected}</Badge>}
      </div>
      <p className="mt-1 text-xs text-slate-700">{cell.reason}</p>
      <details className="mt-1 text-xs">
        <summary className="cursor-pointer text-brand-700">What happened</summary>
        {cell.events.length > 0 ? (
          <ol className="mt-1 list-decimal space-y-1 pl-4">
            {cell.events.map((e) => (
              <li key={e.id}>
                {e.seq ? (
                  <Link className="font-mono text-brand-700 hover:underline" href={`/audit/${e.seq}`}>
                    #{e.seq}
                  </Link>
                ) : (
                  <span className="font-mono" title="recorded in the replay's own Bulkhead">
                    event {e.id}
                  </span>
                )}{" "}
                <span className="font-mono">{e.type}</span> {e.summary}
              </li>
            ))}
          </ol>
        ) : (
          <p className="mt-1 text-slate-500">Bulkhead was not on this agent&apos;s path: no audit events.</p>
        )}
        <p className="mt-2 font-medium">The upstream saw</p>
        {cell.upstream.length > 0 ? (
          <ul className="list-disc pl-4">
            {cell.upstream.map((u, i) => (
              <li key={i}>{u}</li>
            ))}
          </ul>
        ) : (
          <p className="text-slate-500">nothing</p>
        )}
        <p className="mt-1 text-slate-500">Volumes left: {cell.volumesLeft.join(", ") || "none"}</p>
      </details>
    </div>
  );
}

/** The replay's matrix: one row per switch combination, a cell per agent behaviour. */
export function ReplayMatrix({ cells }: { cells: ReplayCellRecord[] }) {
  const find = (identity: boolean, policy: boolean, isolation: boolean, behaviour: ReplayCellRecord["behaviour"]) =>
    cells.find((c) => c.identity === identity && c.policy === policy && c.isolation === isolation && c.behaviour === behaviour);
  return (
    <div className="overflow-x-auto rounded-lg border border-slate-200 bg-white">
      <table className="min-w-full divide-y divide-slate-200 text-sm" data-testid="replay-matrix">
        <thead className="bg-slate-50 text-left text-xs font-semibold uppercase tracking-wide text-slate-600">
          <tr>
            <th className="px-3 py-2">Identity</th>
            <th className="px-3 py-2">Policy</th>
            <th className="px-3 py-2">Isolation</th>
            <th className="px-3 py-2">As in the incident</th>
            <th className="px-3 py-2">Evasive</th>
          </tr>
        </thead>
        <tbody className="divide-y divide-slate-100 align-top">
          {ROWS.map(([identity, policy, isolation]) => (
            <tr key={`${identity}-${policy}-${isolation}`}>
              <td className="px-3 py-2">{onOff(identity)}</td>
              <td className="px-3 py-2">{onOff(policy)}</td>
              <td className="px-3 py-2">{onOff(isolation)}</td>
              <td className="px-3 py-2">
                <Cell cell={find(identity, policy, isolation, "incident")} />
              </td>
              <td className="px-3 py-2">
                <Cell cell={find(identity, policy, isolation, "evasive")} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
