"use client";

import { useState } from "react";
import { Button } from "@/components/ui/button";
import type { ActionResult } from "@/lib/http/action";
import { errorText, useFormAction } from "@/components/ui/use-form-action";

type Result = ActionResult<{ token: string; expiresAt: string }>;

/** Mints a token and shows it once, with a copy button; reloading the page does not show it again. */
export function MintToken({ action, taskId }: { action: (prev: Result | null, form: FormData) => Promise<Result>; taskId: string }) {
  const { state, pending, formProps } = useFormAction(action, { resetOnSuccess: false });
  // "copied" only once the clipboard took it; "failed" (no clipboard API over plain http, or the
  // browser refused) selects the token instead, so it can be copied by hand.
  const [copied, setCopied] = useState<"no" | "copied" | "failed">("no");
  return (
    <div className="space-y-3">
      <form {...formProps}>
        <input type="hidden" name="id" value={taskId} />
        <Button type="submit" disabled={pending}>
          {pending ? "Minting…" : "Mint token"}
        </Button>
      </form>
      {state && !state.ok ? (
        <p role="alert" className="text-sm text-red-700">
          {errorText(state)}
        </p>
      ) : null}
      {state?.ok ? (
        <div className="rounded-md bg-amber-50 p-4 ring-1 ring-amber-200">
          <p className="text-sm font-medium">Give this token to the agent now. It is shown once and expires {state.data.expiresAt.replace("T", " ").slice(0, 19)} UTC.</p>
          <textarea id="minted-token" readOnly aria-label="Task token" data-testid="minted-token" value={state.data.token} rows={3} className="mt-2 w-full rounded-md border-0 p-2 font-mono text-xs ring-1 ring-inset ring-amber-300" />
          <Button
            type="button"
            variant="secondary"
            className="mt-2"
            onClick={async () => {
              try {
                await navigator.clipboard.writeText(state.data.token);
                setCopied("copied");
              } catch {
                const box = document.getElementById("minted-token");
                if (box instanceof HTMLTextAreaElement) box.select();
                setCopied("failed");
              }
            }}
          >
            {copied === "copied" ? "Copied" : "Copy token"}
          </Button>
          {copied === "failed" ? (
            <p role="alert" className="mt-2 text-sm text-red-700">
              The browser did not let the page copy it (the clipboard needs https, or permission). The token is selected: copy it with Ctrl+C (⌘C).
            </p>
          ) : null}
        </div>
      ) : null}
    </div>
  );
}
