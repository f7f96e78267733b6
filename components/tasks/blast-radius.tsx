import { Badge } from "@/components/ui/badge";
import type { BlastRadius } from "@/lib/policy/blast-radius";

const list = (v: string[] | "any") => (v === "any" ? "any" : v.join(", "));

/** What the task can reach, read from its rules: the question a reviewer asks first. */
export function BlastRadiusSummary({ radius }: { radius: BlastRadius }) {
  return (
    <div className="space-y-3 text-sm" data-testid="blast-radius">
      <p className="text-slate-600">
        Mode <strong>{radius.mode}</strong>
        {radius.mode === "report" ? " (decisions are logged, nothing is blocked)" : ""}; anything not listed is{" "}
        <strong>{radius.unlisted === "deny" ? "denied" : "held for a person"}</strong>.
      </p>
      {radius.services.length === 0 ? (
        <p className="text-slate-600">No rule grants anything: this task can reach nothing.</p>
      ) : (
        <table className="w-full text-left">
          <thead className="text-xs text-slate-500">
            <tr>
              <th>Service</th>
              <th>Environments</th>
              <th>Resources</th>
              <th>Highest effect</th>
              <th>Without approval</th>
              <th>Needs approval</th>
            </tr>
          </thead>
          <tbody>
            {radius.services.map((s) => (
              <tr key={s.service} className="align-top">
                <td className="font-medium">{s.service}</td>
                <td>{list(s.environments)}</td>
                <td className="font-mono text-xs">{list(s.resources)}</td>
                <td>{s.highestEffect ? <Badge tone={s.highestEffect === "irreversible" || s.highestEffect === "destructive" ? "red" : "slate"}>{s.highestEffect}</Badge> : "—"}</td>
                <td>{s.allowedWithoutApproval.join(", ") || "—"}</td>
                <td>{s.needsApproval.map((n) => `${n.effects.join(", ")} (${n.ruleId})`).join("; ") || "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
