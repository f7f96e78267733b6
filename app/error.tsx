"use client";

/**
 * What a page shows when rendering it failed on the server (the reason stays in the server's
 * log; the reference below finds it there). The usual cause a person can act on is a database
 * that is down or restarting, so the page says so and offers to try again.
 */
export default function ErrorPage({ error, reset }: { error: Error & { digest?: string }; reset: () => void }) {
  return (
    <main className="flex min-h-screen items-center justify-center px-4">
      <div role="alert" className="w-full max-w-md rounded-xl bg-white p-8 shadow-sm ring-1 ring-slate-200">
        <h1 className="text-xl font-semibold">This page could not be shown</h1>
        <p className="mt-2 text-sm text-slate-700">
          Something failed on the server. If Bulkhead&apos;s database is down or restarting, the launcher&apos;s log says so; try again in a moment.
        </p>
        {error.digest ? <p className="mt-2 font-mono text-xs text-slate-500">Reference: {error.digest}</p> : null}
        <button type="button" onClick={reset} className="mt-4 rounded-md bg-brand-600 px-3 py-2 text-sm font-semibold text-white hover:bg-brand-700">
          Try again
        </button>
      </div>
    </main>
  );
}
