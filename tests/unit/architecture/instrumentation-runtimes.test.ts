import { transform } from "esbuild";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

/**
 * Next.js compiles instrumentation.ts for the edge runtime too, replacing `process.env.NEXT_RUNTIME`
 * with a constant and dropping the branches that cannot run. When the file imported a module
 * before testing the runtime, that import stayed in the edge build, and the dashboard's first
 * build printed 18 "A Node.js module is loaded … not supported in the Edge Runtime" warnings
 * ("Ecmascript file had an error") for every node: module it reached. Same replacement here,
 * with esbuild's dead-code elimination.
 */
describe("instrumentation.ts in the edge build", () => {
  const source = readFileSync("instrumentation.ts", "utf8");
  const build = async (runtime: string) =>
    (await transform(source, { loader: "ts", format: "esm", minifySyntax: true, define: { "process.env.NEXT_RUNTIME": JSON.stringify(runtime) } })).code;

  it("imports nothing when compiled for the edge runtime", async () => {
    const edge = await build("edge");
    expect(edge).not.toMatch(/import\s*\(/);
    expect(edge).not.toMatch(/@\/lib\//);
  });

  it("still starts the dashboard's background work in the Node.js runtime", async () => {
    const node = await build("nodejs");
    expect(node).toMatch(/import\s*\(\s*"@\/lib\/webhooks\/start"\s*\)/);
    expect(node).toContain("startDashboardWebhooks()");
  });
});
