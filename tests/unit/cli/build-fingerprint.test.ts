import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { sourceFingerprint } from "@/cli/runtime/build";

/**
 * `bulkhead start` rebuilds the dashboard when its sources changed. Every file Next compiles
 * counts: an edit to proxy.ts (the CSP, CSRF checks and sign-in redirects) or instrumentation.ts
 * left the old build in place, served as if current.
 */
describe("the dashboard build's source fingerprint", () => {
  const root = mkdtempSync(path.join(tmpdir(), "bh-fingerprint-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const write = (file: string, text: string) => {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), text);
  };
  for (const [file, text] of Object.entries({
    "app/page.tsx": "export default 1;",
    "components/x.tsx": "export const x = 1;",
    "lib/y.ts": "export const y = 1;",
    "proxy.ts": "export const csp = 'a';",
    "instrumentation.ts": "export function register() {}",
    "public/robots.txt": "User-agent: *",
    "next.config.ts": "export default {};",
    "tests/z.test.ts": "test",
  })) write(file, text);

  it.each(["proxy.ts", "instrumentation.ts", "public/robots.txt", "app/page.tsx", "components/x.tsx", "lib/y.ts", "next.config.ts"])("changes when %s changes", (file) => {
    const before = sourceFingerprint(root);
    write(file, `// changed ${file}\n`);
    expect(sourceFingerprint(root)).not.toBe(before);
  });

  it("does not change for files the build never reads", () => {
    const before = sourceFingerprint(root);
    write("tests/z.test.ts", "changed");
    write("docs/readme.md", "new");
    expect(sourceFingerprint(root)).toBe(before);
  });
});
