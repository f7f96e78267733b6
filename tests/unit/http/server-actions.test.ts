import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

/**
 * Every server action checks its own origin (lib/http/action.ts): through runAction, or by
 * calling assertSameOriginAction() first. proxy.ts refuses cross-site posts before any action
 * runs, but it is a filter, not the boundary (SECURITY.md); this test makes a new action that
 * forgets the check fail, whatever proxy.ts does. tests/e2e/server-actions.spec.ts then posts to
 * every action of the running build without and with a foreign Origin.
 */
function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) return files(p);
    return /\.(ts|tsx)$/.test(name) ? [p] : [];
  });
}

const serverActionFiles = [...files(path.resolve("app")), ...files(path.resolve("components")), ...files(path.resolve("lib"))].filter((f) =>
  /^\s*["']use server["'];?/m.test(readFileSync(f, "utf8").split("\n").slice(0, 3).join("\n")),
);

/** Each exported async function with its body (up to the next top-level export). */
function exportedActions(source: string): Array<{ name: string; body: string }> {
  const starts = [...source.matchAll(/^export\s+async\s+function\s+(\w+)/gm)];
  return starts.map((m, i) => ({ name: m[1]!, body: source.slice(m.index, starts[i + 1]?.index ?? source.length) }));
}

describe("server actions", () => {
  it("live only in 'use server' files under app/", () => {
    expect(serverActionFiles.length).toBeGreaterThanOrEqual(10);
    for (const file of serverActionFiles) expect(path.relative(process.cwd(), file)).toMatch(/^app\//);
  });

  it("each checks the request's origin before doing anything", () => {
    let count = 0;
    for (const file of serverActionFiles) {
      const source = readFileSync(file, "utf8");
      for (const action of exportedActions(source)) {
        count++;
        const label = `${path.relative(process.cwd(), file)} ${action.name}`;
        const body = action.body.slice(action.body.indexOf("{") + 1);
        const check = body.search(/\b(runAction|assertSameOriginAction)\(/);
        expect(check, `${label} must go through runAction or call assertSameOriginAction()`).toBeGreaterThanOrEqual(0);
        // Nothing that reads the session or the database comes before it.
        const before = body.slice(0, check);
        expect(before, `${label}: the origin check must come first`).not.toMatch(/\b(getDb|signIn|signOut|requireActor|auth)\(/);
      }
      // No other exports: a "use server" file's exports are all callable from the browser.
      expect(source.match(/^export\s+(?!async\s+function|interface|type)/gm) ?? [], path.relative(process.cwd(), file)).toEqual([]);
    }
    expect(count).toBeGreaterThanOrEqual(25);
  });
});
