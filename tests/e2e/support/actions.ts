import { readFileSync } from "node:fs";
import path from "node:path";

/** The id the built dashboard (`.next`) gives the server action exported as `name`. */
export function actionId(name: string): string {
  const manifest = JSON.parse(readFileSync(path.resolve(".next/server/server-reference-manifest.json"), "utf8")) as {
    node: Record<string, { exportedName?: string; workers: Record<string, { exportedName?: string }> }>;
  };
  const found = Object.entries(manifest.node).find(([, e]) => (e.exportedName ?? Object.values(e.workers)[0]?.exportedName) === name);
  if (!found) throw new Error(`no server action named ${name} in the build`);
  return found[0];
}
