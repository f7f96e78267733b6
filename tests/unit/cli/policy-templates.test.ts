import { describe, expect, it } from "vitest";
import type { CliContext } from "@/cli/context";
import { main } from "@/cli/main";
import { parsePolicy } from "@/lib/policy/parse";
import { policyTemplates } from "@/lib/policy/templates";

function capture(json = false) {
  const out: string[] = [];
  const err: string[] = [];
  const ctx: CliContext = { json, stdout: (l) => out.push(l), stderr: (l) => err.push(l), stdinIsTTY: true, readStdin: async () => "" };
  return { ctx, out, err };
}

describe("bulkhead policy templates [ID]", () => {
  it("prints each template as YAML a policy file can hold as is", async () => {
    expect(policyTemplates.length).toBeGreaterThan(0);
    for (const t of policyTemplates) {
      const c = capture();
      expect(await main(["policy", "templates", t.id], c.ctx)).toBe(0);
      const text = `${c.out.join("\n")}\n`;
      expect(text).toBe(t.yaml.endsWith("\n") ? t.yaml : `${t.yaml}\n`);
      expect(parsePolicy(text).ok, t.id).toBe(true);
    }
  });

  it("lists them, saying how to print one; an unknown id names the ones there are", async () => {
    const list = capture();
    expect(await main(["policy", "templates"], list.ctx)).toBe(0);
    for (const t of policyTemplates) expect(list.out.some((l) => l.startsWith(t.id))).toBe(true);
    expect(list.out.at(-1)).toMatch(/bulkhead policy templates ID > policy\.yaml/);
    const unknown = capture();
    expect(await main(["policy", "templates", "delete-everything"], unknown.ctx)).toBe(2);
    expect(unknown.err).toEqual([`bulkhead policy: no policy template "delete-everything"; the templates are ${policyTemplates.map((t) => t.id).join(", ")}`]);
    const two = capture();
    expect(await main(["policy", "templates", "a", "b"], two.ctx)).toBe(2);
  });
});
