"use client";

import { useActionState, useState } from "react";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { useFormAction } from "@/components/ui/use-form-action";
import { useHydrated } from "@/components/ui/use-hydrated";
import type { ActionResult } from "@/lib/http/action";
import type { ExplainResult } from "@/lib/policy/explain";

type Saved = { policyVersion: number; cancelledApprovals: number };
type SaveAction = (prev: ActionResult<Saved> | null, form: FormData) => Promise<ActionResult<Saved>>;
type SimulateAction = (prev: ActionResult<ExplainResult> | null, form: FormData) => Promise<ActionResult<ExplainResult>>;

const TONE = { allow: "green", deny: "red", hold: "amber" } as const;
const INPUT = "rounded-md border-0 px-3 py-2 text-sm ring-1 ring-inset ring-slate-300";

/**
 * The task's policy: edit the YAML (validated on save, errors point at the line and rule) and
 * try requests against the text in the editor, saved or not, before it blocks anything.
 */
export function PolicyWorkbench({ taskId, initialYaml, version, canEdit, save, simulate }: { taskId: string; initialYaml: string; version: number; canEdit: boolean; save: SaveAction; simulate: SimulateAction }) {
  const [yaml, setYaml] = useState(initialYaml);
  // Read-only until hydrated: text typed before then would be lost under React's state.
  const hydrated = useHydrated();
  // Controlled, so a simulation keeps what was typed (React resets uncontrolled form fields).
  const [request, setRequest] = useState({ method: "POST", url: "", body: "" });
  // Saving a policy that widens what runs without a human needs step-up; the dialog resubmits.
  const { state: saved, pending: saving, formProps: saveForm } = useFormAction(save, { resetOnSuccess: false });
  const [sim, simAction, simulating] = useActionState(simulate, null);
  const errors = saved && !saved.ok ? (saved.fieldErrors?.policyYaml ?? []) : [];
  const result = sim?.ok ? sim.data : null;
  return (
    <div className="grid gap-6 lg:grid-cols-2">
      <form {...saveForm} className="space-y-2">
        <input type="hidden" name="id" value={taskId} />
        {/* The version this editor started from (or last saved): a save over a newer one is refused. */}
        <input type="hidden" name="baseVersion" value={saved?.ok ? saved.data.policyVersion : version} />
        <label htmlFor="policyYaml" className="block text-sm font-medium">
          Policy (YAML)
        </label>
        <textarea
          id="policyYaml"
          name="policyYaml"
          value={yaml}
          onChange={(e) => setYaml(e.target.value)}
          readOnly={!canEdit || !hydrated}
          rows={16}
          spellCheck={false}
          aria-invalid={errors.length > 0 ? true : undefined}
          aria-describedby="policyYaml-error"
          className="block w-full rounded-md border-0 bg-slate-900 p-3 font-mono text-xs text-slate-100 ring-1 ring-inset ring-slate-700 aria-[invalid=true]:ring-red-500"
        />
        {errors.length > 0 ? (
          <ul id="policyYaml-error" className="space-y-1 text-sm text-red-700" role="alert">
            {errors.map((e) => (
              <li key={e}>{e}</li>
            ))}
          </ul>
        ) : null}
        {saved?.ok ? (
          <p role="status" className="text-sm text-emerald-700">
            Saved as version {saved.data.policyVersion}; workers enforce it within a second.
            {saved.data.cancelledApprovals > 0
              ? ` ${saved.data.cancelledApprovals === 1 ? "One held request" : `${saved.data.cancelledApprovals} held requests`} of this task that it denies ${saved.data.cancelledApprovals === 1 ? "was" : "were"} cancelled; the agent was told.`
              : ""}
          </p>
        ) : saved && !saved.ok && errors.length === 0 ? (
          <p role="alert" className="text-sm text-red-700">
            {saved.message}
          </p>
        ) : null}
        {canEdit ? (
          <Button type="submit" disabled={saving}>
            {saving ? "Saving…" : "Save policy"}
          </Button>
        ) : null}
      </form>

      <form action={simAction} className="space-y-2">
        <input type="hidden" name="policyYaml" value={yaml} />
        <input type="hidden" name="taskId" value={taskId} />
        <h3 className="text-sm font-medium">Simulator: what would the proxy do? (the task&apos;s scope first, then this policy)</h3>
        <div className="flex gap-2">
          <select name="method" aria-label="Method" value={request.method} onChange={(e) => setRequest({ ...request, method: e.target.value })} className={INPUT}>
            {["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"].map((m) => (
              <option key={m}>{m}</option>
            ))}
          </select>
          <input name="url" aria-label="URL" required readOnly={!hydrated} value={request.url} onChange={(e) => setRequest({ ...request, url: e.target.value })} placeholder="https://backboard.railway.com/graphql/v2" className={`${INPUT} flex-1`} />
        </div>
        <textarea name="body" aria-label="Body" rows={5} readOnly={!hydrated} value={request.body} onChange={(e) => setRequest({ ...request, body: e.target.value })} spellCheck={false} placeholder='{"query":"mutation { volumeDelete(volumeId: \"vol_123\") }"}' className={`${INPUT} w-full font-mono text-xs`} />
        <Button type="submit" variant="secondary" disabled={simulating}>
          {simulating ? "Evaluating…" : "Simulate"}
        </Button>
        {sim && !sim.ok ? (
          <p role="alert" className="text-sm text-red-700">
            {sim.message} {Object.values(sim.fieldErrors ?? {}).flat().join(" ")}
          </p>
        ) : null}
        {result && !result.ok ? (
          <p role="alert" className="text-sm text-red-700">
            The policy in the editor is not valid; fix it first.
          </p>
        ) : null}
        {result?.ok ? (
          <div className="space-y-2 rounded-md bg-white p-3 text-sm ring-1 ring-slate-200" data-testid="simulation">
            <p>
              <Badge tone={TONE[result.decision]}>{result.decision}</Badge> <span data-testid="simulation-reason">{result.reason}</span>
            </p>
            {result.ruleId ? <p className="text-xs text-slate-500">Rule: {result.ruleId}</p> : null}
            {result.mode === "report" && result.wouldBe ? <p className="text-xs text-amber-700">Report mode: enforcement would {result.wouldBe}.</p> : null}
            {result.actions.length > 0 ? (
              <table className="w-full text-xs">
                <thead>
                  <tr className="text-left text-slate-500">
                    <th>Service</th>
                    <th>Environment</th>
                    <th>Operation</th>
                    <th>Resource</th>
                    <th>Effect</th>
                  </tr>
                </thead>
                <tbody>
                  {result.actions.map((a, i) => (
                    <tr key={i}>
                      <td>{a.service}</td>
                      <td>{a.environment}</td>
                      <td className="font-mono">{a.operation}</td>
                      <td className="font-mono">{a.resource}</td>
                      <td>{a.effect}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            ) : null}
          </div>
        ) : null}
      </form>
    </div>
  );
}
