"use client";

import { useState } from "react";
import { Button } from "@/components/ui/button";
import type { ActionResult } from "@/lib/http/action";
import { errorText, useFormAction } from "@/components/ui/use-form-action";

type Result = ActionResult<{ token: string; expiresAt: string }>;

/** Mints a token and shows it once, with a copy button; reloading the page does not show it again. */
export function MintToken({ action, taskId, proxy }: { action: (prev: Result | null, form: FormData) => Promise<Result>; taskId: string; proxy: string | null }) {
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
          <p className="mt-3 text-sm">
            The agent sends its requests through Bulkhead&apos;s proxy with the token as the proxy password
            {proxy ? "" : " (the proxy's address is BULKHEAD_PROXY_HOST:BULKHEAD_PROXY_PORT, by default 127.0.0.1:8080)"}, and trusts
            Bulkhead&apos;s CA for HTTPS (<a className="underline" href="/api/v1/ca" download>download the CA certificate</a>; <code>bulkhead ca cert</code> prints it):
          </p>
          <textarea
            readOnly
            aria-label="Proxy settings for the agent"
            data-testid="proxy-settings"
            rows={3}
            value={`export HTTPS_PROXY=http://agent:${state.data.token}@${proxy ?? "PROXY_HOST:PROXY_PORT"}\nexport HTTP_PROXY=$HTTPS_PROXY\nexport SSL_CERT_FILE=$PWD/bulkhead-ca.pem NODE_EXTRA_CA_CERTS=$PWD/bulkhead-ca.pem`}
            className="mt-2 w-full rounded-md border-0 p-2 font-mono text-xs ring-1 ring-inset ring-amber-300"
          />
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
