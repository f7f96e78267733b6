import { visible } from "@/lib/audit/view";
import type { TaskReport } from "@/lib/reports/task-report";

export function PolicyVersions({ versions }: { versions: TaskReport["policyVersions"] }) {
  return (
    <ol className="space-y-3">
      {versions.map((v) => (
        <li key={v.version} className="rounded-lg bg-white p-3 shadow-sm ring-1 ring-slate-200">
          <p className="text-sm font-semibold">
            Version {v.version} <span className="font-normal text-slate-500">{v.at ? v.at.toISOString() : ""} by {v.by ?? "unknown"}</span>
          </p>
          <pre className="mt-2 overflow-x-auto text-xs">
            {v.diff
              ? v.diff.map((d, i) => (
                  <span key={i} className={d.op === "+" ? "block bg-green-50 text-green-800" : d.op === "-" ? "block bg-red-50 text-red-800" : "block text-slate-600"}>
                    {`${d.op} ${visible(d.text)}`}
                  </span>
                ))
              : v.yaml.split("\n").map((t) => visible(t)).join("\n")}
          </pre>
        </li>
      ))}
    </ol>
  );
}
