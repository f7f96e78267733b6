// The server actions the built dashboard has, and Next.js's answer to a request naming any other,
// in plain JavaScript: the dashboard's own HTTP server (scripts/request-guard.mjs, loaded before
// anything is compiled) answers such a request by its `Next-Action` header, and proxy.ts one that
// names its action in a form's fields (lib/http/action-request.ts). Next.js answers both 409 (400
// when the id is not shaped like one) with `x-nextjs-action-not-found: 1` and logs a stack trace
// each time; answered here the same way (so the dashboard's client reacts alike to a page left
// open across an upgrade), nothing is logged.
import { readFileSync } from "node:fs";
import path from "node:path";

/** Set by scripts/app-server.mjs for its own process: the manifest proxy.ts reads the ids from. */
export const ACTION_MANIFEST_ENV = "BULKHEAD_INTERNAL_ACTION_MANIFEST";

/** Where the build in `appDir` lists its server actions. */
export function actionManifestFile(appDir) {
  return path.join(appDir, ".next", "server", "server-reference-manifest.json");
}

/** The server action ids listed in `file`, or null (then nothing is refused as unknown) when there is none or it cannot be read. */
export function readActionIds(file) {
  if (!file) return null;
  try {
    const manifest = JSON.parse(readFileSync(file, "utf8"));
    return new Set([...Object.keys(manifest.node ?? {}), ...Object.keys(manifest.edge ?? {})]);
  } catch {
    return null;
  }
}

/** Next.js's status for an id it does not have: 409 for one shaped like an action id (42 characters, its mightBeServerReferenceId), else 400. */
export function unknownActionStatus(id) {
  return id.length === 42 ? 409 : 400;
}

/** Next.js's answer to such a request, as status, headers and text. */
export function unknownActionAnswer(status) {
  return {
    status,
    body: status === 400 ? "Invalid Server Action request." : "Server Action unavailable.",
    headers: { "x-nextjs-action-not-found": "1", "content-type": "text/plain", "cache-control": "no-store", "content-security-policy": "default-src 'none'", "x-content-type-options": "nosniff" },
  };
}
