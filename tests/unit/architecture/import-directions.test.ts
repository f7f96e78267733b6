import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

/**
 * Imports run one way (docs/architecture.md, Folders and the import rule):
 *   app -> components -> lib;  proxy-worker -> lib;  cli -> lib, proxy-worker, replay;  replay -> lib.
 * lib/ is what the dashboard and the worker share, so it imports none of the folders built on it.
 * eslint.config.mjs enforces the same table while editing (scripts/eslint/import-direction.mjs); this
 * test is the second, independent guard: its own scanner (TypeScript's, which skips comments and
 * strings) over every static import, `export … from`, `import()`, `require()` and `import type`.
 * Both copies of the table are written out on purpose: loosening one still leaves the other.
 */
const ALLOWED: Record<string, readonly string[]> = {
  app: ["app", "components", "lib"],
  components: ["components", "lib"],
  lib: ["lib"],
  "proxy-worker": ["proxy-worker", "lib"],
  cli: ["cli", "lib", "proxy-worker", "replay"],
  replay: ["replay", "lib"],
};
/** Files at the top level that Next.js runs as part of the dashboard. */
const ROOT_FILES_OF: Record<string, string> = { "instrumentation.ts": "app", "proxy.ts": "app" };
const SOURCE = /\.(ts|tsx|mts|cts|js|jsx|mjs|cjs)$/;
const SKIP = new Set(["node_modules", ".next", "dist"]);
const ROOT = fileURLToPath(new URL("../../..", import.meta.url));

/** The governed folder a repository path belongs to, or null (tests, scripts, bench, packages...). */
function layerOf(file: string): string | null {
  if (ROOT_FILES_OF[file]) return ROOT_FILES_OF[file];
  const top = file.split("/")[0]!;
  return file.includes("/") && top in ALLOWED ? top : null;
}

/** The repository path a specifier names, or null for a package (`react`, `node:fs`, ...). */
function resolveSpecifier(from: string, specifier: string): string | null {
  if (specifier.startsWith("@/")) return path.posix.normalize(specifier.slice(2));
  if (specifier === "." || specifier === ".." || specifier.startsWith("./") || specifier.startsWith("../")) {
    return path.posix.normalize(path.posix.join(path.posix.dirname(from), specifier));
  }
  return null;
}

interface Offence {
  file: string;
  line: number;
  specifier: string;
  from: string;
  to: string;
}

/** Every import in `text` (the file at repository path `file`) that runs against the table. */
function offencesIn(file: string, text: string): Offence[] {
  const from = layerOf(file);
  if (!from) return [];
  const offences: Offence[] = [];
  for (const imported of ts.preProcessFile(text, true, true).importedFiles) {
    const target = resolveSpecifier(file, imported.fileName);
    if (target === null) continue;
    // A path that leaves the governed folders (tests/, scripts/, the repository itself) is as
    // backwards as one into a sibling: product code never imports test or build code.
    const to = layerOf(target) ?? (target.startsWith("..") ? "outside the repository" : target.split("/")[0]!);
    if (ALLOWED[from]!.includes(to)) continue;
    offences.push({ file, line: text.slice(0, imported.pos).split("\n").length, specifier: imported.fileName, from, to });
  }
  return offences;
}

function sourceFiles(dir: string, out: string[]): string[] {
  for (const entry of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    if (SKIP.has(entry.name)) continue;
    const rel = dir ? `${dir}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      if (dir || entry.name in ALLOWED) sourceFiles(rel, out);
    } else if (SOURCE.test(entry.name) && layerOf(rel)) out.push(rel);
  }
  return out;
}

const describeOffence = (o: Offence) => `${o.file}:${o.line} imports "${o.specifier}" (${o.from} -> ${o.to})`;

describe("import directions", () => {
  it("catches every form of a backwards import and ignores prose", () => {
    const text = [
      'import { runWorker } from "@/proxy-worker/main";',
      "// lib/cli/worker.ts used to import proxy-worker/main: a comment is not an import",
      'import type { SignInState } from "../../app/login/actions";',
      'export * from "../../cli/context";',
      'const lazy = () => import("@/replay/run");',
      'type Page = typeof import("@/components/auth/login-form");',
      'const old = require("../../tests/support/cli");',
      'const text = "import(\\"@/app/x\\")";',
      'import { z } from "zod";',
      'import { loadCommonConfig } from "@/lib/config/common";',
      'import { helper } from "../db/client";',
    ].join("\n");
    expect(offencesIn("lib/auth/example.ts", text).map(describeOffence)).toEqual([
      'lib/auth/example.ts:1 imports "@/proxy-worker/main" (lib -> proxy-worker)',
      'lib/auth/example.ts:3 imports "../../app/login/actions" (lib -> app)',
      'lib/auth/example.ts:4 imports "../../cli/context" (lib -> cli)',
      'lib/auth/example.ts:5 imports "@/replay/run" (lib -> replay)',
      'lib/auth/example.ts:6 imports "@/components/auth/login-form" (lib -> components)',
      'lib/auth/example.ts:7 imports "../../tests/support/cli" (lib -> tests)',
    ]);
  });

  it("applies each folder's own row of the table", () => {
    const probe = (file: string, specifier: string) => offencesIn(file, `import x from "${specifier}";`).length;
    expect(probe("components/auth/login-form.tsx", "@/app/login/actions")).toBe(1);
    expect(probe("components/auth/login-form.tsx", "@/lib/auth/current")).toBe(0);
    expect(probe("app/login/page.tsx", "@/components/auth/login-form")).toBe(0);
    expect(probe("app/login/page.tsx", "@/proxy-worker/main")).toBe(1);
    expect(probe("app/login/page.tsx", "@/cli/main")).toBe(1);
    expect(probe("proxy-worker/main.ts", "@/cli/context")).toBe(1);
    expect(probe("proxy-worker/main.ts", "@/components/ui/button")).toBe(1);
    expect(probe("proxy-worker/proxy/pipeline.ts", "../../app/api/x")).toBe(1);
    expect(probe("proxy-worker/main.ts", "@/lib/log")).toBe(0);
    expect(probe("cli/commands/worker.ts", "@/proxy-worker/main")).toBe(0);
    expect(probe("cli/commands/replay.ts", "@/replay/run")).toBe(0);
    expect(probe("cli/main.ts", "@/app/login/actions")).toBe(1);
    expect(probe("replay/run.ts", "@/cli/runtime/database-roles")).toBe(1);
    expect(probe("instrumentation.ts", "@/proxy-worker/main")).toBe(1);
    expect(probe("tests/unit/x.test.ts", "@/proxy-worker/main")).toBe(0);
  });

  it("holds for every source file in the repository", () => {
    const files = sourceFiles("", []);
    expect(files.length).toBeGreaterThan(100); // the walk found the code, not an empty folder
    const offences = files.flatMap((file) => offencesIn(file, readFileSync(path.join(ROOT, file), "utf8")));
    expect(offences.map(describeOffence), "imports that run backwards (see docs/architecture.md)").toEqual([]);
  });
});
