// Types for lib/http/server-actions.mjs (plain JavaScript: the dashboard's own server loads it before anything is compiled).
/** Set by scripts/app-server.mjs for its own process: the manifest proxy.ts reads the ids from. */
export const ACTION_MANIFEST_ENV: "BULKHEAD_INTERNAL_ACTION_MANIFEST";
/** Where the build in `appDir` lists its server actions. */
export function actionManifestFile(appDir: string): string;
/** The server action ids listed in `file`, or null when there is none or it cannot be read. */
export function readActionIds(file: string | undefined): Set<string> | null;
/** Next.js's status for an id it does not have: 409 for one shaped like an action id, else 400. */
export function unknownActionStatus(id: string): 400 | 409;
/** Next.js's answer to such a request, as status, headers and text. */
export function unknownActionAnswer(status: 400 | 409): { status: 400 | 409; body: string; headers: Record<string, string> };
