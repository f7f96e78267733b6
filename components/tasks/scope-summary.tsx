import { Badge } from "@/components/ui/badge";
import type { ScopeEntry } from "@/lib/identity/scope";
import type { ScopeWarning } from "@/lib/policy/scope";

const EFFECT_TONE = { read: "slate", write: "blue", destructive: "red", irreversible: "red" } as const;

/**
 * Layer 1 of a task: the scope its tokens carry, fixed at creation, and the policy rules that
 * reach outside it (those never apply: the proxy refuses such actions before the policy).
 */
export function ScopeSummary({ entries, valid, warnings }: { entries: readonly ScopeEntry[]; valid: boolean; warnings: readonly ScopeWarning[] }) {
  return (
    <div className="space-y-3 text-sm" data-testid="task-scope">
      {!valid ? (
        <p className="text-red-700">The stored scope is not valid; the proxy refuses every request of this task.</p>
      ) : entries.length === 0 ? (
        <p className="text-slate-600" data-testid="scope-none">
          <strong>none</strong>: this task may touch nothing, whatever its policy says.
        </p>
      ) : (
        <table className="w-full text-left">
          <thead className="text-xs text-slate-500">
            <tr>
              <th>Service</th>
              <th>Environment</th>
              <th>Up to</th>
            </tr>
          </thead>
          <tbody>
            {entries.map((e) => (
              <tr key={`${e.service}:${e.environment}`} data-testid="scope-entry">
                <td className="font-medium">{e.service === "*" ? "any service" : e.service}</td>
                <td>{e.environment === "*" ? "any" : e.environment}</td>
                <td>
                  <Badge tone={EFFECT_TONE[e.effect]}>{e.effect}</Badge>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p className="text-xs text-slate-500">Fixed when the task was created and carried in every token; a wider scope needs a new task.</p>
      {warnings.length > 0 ? (
        <ul className="space-y-1 rounded-md bg-amber-50 p-3 text-amber-900 ring-1 ring-amber-600/20" data-testid="scope-warnings">
          {warnings.map((w, i) => (
            <li key={i}>{w.message}</li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}
