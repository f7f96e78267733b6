import { describe, expect, it } from "vitest";
import { compilePolicy } from "@/lib/policy/compiled";
import { parsePolicy } from "@/lib/policy/parse";
import { createRegistry } from "@/lib/semantics/registry";
import { reachableName } from "@/proxy-worker/isolation/reachability";

const registry = createRegistry([{ id: "plainapi", hosts: ["plain.example.test"], scheme: "http", ports: [80], protocol: "rest" }]);

function policy(yaml: string) {
  const parsed = parsePolicy(yaml);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  return compilePolicy(parsed.policy);
}

/** What the sandbox resolver may do with a name: nothing (null), look it up, or answer it unlooked-up (held). */
const reach = (yaml: string, name: string) => {
  const r = reachableName(registry, policy(yaml), name);
  return r === null ? "unreachable" : r.held ? "held" : "looked up";
};

describe("which names the sandbox resolver looks up", () => {
  it("looks up only names some request could reach without a person", () => {
    expect(reach("unlisted: deny\nrules: []\n", "attacker.example")).toBe("unreachable");
    expect(reach("unlisted: hold\nrules: []\n", "x.attacker.example")).toBe("held");
    expect(reach("unlisted: hold\nrules: []\n", "plain.example.test")).toBe("held");
    expect(reach("rules:\n  - service: plainapi\n    decision: hold\n    effects: [read]\n", "plain.example.test")).toBe("held");
    expect(reach("rules:\n  - service: '*'\n    decision: hold\n    effects: [read]\n", "x.attacker.example")).toBe("held");
    expect(reach("rules:\n  - service: plainapi\n    effects: [read]\n", "plain.example.test")).toBe("looked up");
    expect(reach("rules:\n  - service: plainapi\n    effects: [read]\n", "x.attacker.example")).toBe("unreachable");
    expect(reach("unlisted: hold\nrules:\n  - service: plainapi\n    effects: [read]\n", "x.attacker.example")).toBe("held");
    expect(reach("rules:\n  - service: '*'\n    effects: [read]\n", "x.attacker.example")).toBe("looked up");
    expect(reach("mode: report\nunlisted: hold\nrules: []\n", "x.attacker.example")).toBe("looked up");
    // An allow rule that has expired lets nothing through any more.
    expect(reach("unlisted: hold\nrules:\n  - service: plainapi\n    effects: [read]\n    expires_at: '2020-01-01T00:00:00Z'\n", "plain.example.test")).toBe("held");
  });
});
