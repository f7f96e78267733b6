// Preloaded with `node --import` by tests that assert what a command loads: every module the ESM
// loader resolves (the compiled CLI's chunks and the packages they import) and every CommonJS
// file required, one URL a line, into MODULE_TRACE_FILE.
import { appendFileSync, writeFileSync } from "node:fs";
import { createRequire, register } from "node:module";
import process from "node:process";

const out = process.env.MODULE_TRACE_FILE;
if (out) {
  writeFileSync(out, "");
  const hooks = `import { appendFileSync } from "node:fs";
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(${JSON.stringify(out)}, result.url + "\\n");
  return result;
}`;
  register(`data:text/javascript,${encodeURIComponent(hooks)}`);
  const require = createRequire(import.meta.url);
  process.on("exit", () => appendFileSync(out, Object.keys(require.cache).map((f) => `file://${f}\n`).join("")));
}
