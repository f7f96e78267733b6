import { describe, expect, it } from "vitest";
import { blastRadius } from "@/lib/policy/blast-radius";
import { parsePolicy } from "@/lib/policy/parse";
import { findTemplate, policyTemplates } from "@/lib/policy/templates";
import { NOW, policy } from "./support";

describe("policy templates", () => {
  for (const template of policyTemplates) {
    it(`${template.id} parses`, () => {
      const result = parsePolicy(template.yaml);
      if (!result.ok) throw new Error(JSON.stringify(result.errors));
      expect(result.policy.rules.length).toBeGreaterThan(0);
      expect(template.title.length).toBeGreaterThan(0);
      expect(template.description.length).toBeGreaterThan(0);
    });
  }
  it("ids are unique and findable", () => {
    const ids = policyTemplates.map((t) => t.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(findTemplate("hold-everything")?.title).toBe("Hold everything for approval");
    expect(findTemplate("nope")).toBeUndefined();
  });
});

describe("blastRadius", () => {
  it("summarises per service what passes and what waits", () => {
    const radius = blastRadius(
      policy(`unlisted: deny
rules:
  - { id: r-read, service: railway, effects: [read] }
  - { id: r-stg, service: railway, environments: [staging], effects: [write, irreversible] }
  - { id: r-stg-del, service: railway, environments: [staging], operations: [environmentDelete], effects: [irreversible], waive_approval: true }
  - { id: gh-hold, service: github, resources: [acme/app], effects: [destructive], decision: hold }
  - { id: gh-deny, service: github, resources: [acme/secrets], decision: deny }
`),
    );
    expect(radius.unlisted).toBe("deny");
    const railway = radius.services.find((s) => s.service === "railway");
    expect(railway).toEqual({
      service: "railway",
      environments: "any",
      resources: "any",
      highestEffect: "irreversible",
      allowedWithoutApproval: ["read", "write", "irreversible"],
      needsApproval: [{ ruleId: "r-stg", effects: ["irreversible"], why: "irreversible without waive_approval" }],
      deniedBy: [],
    });
    const github = radius.services.find((s) => s.service === "github");
    expect(github).toEqual({
      service: "github",
      environments: "any",
      resources: ["acme/app"],
      highestEffect: "destructive",
      allowedWithoutApproval: [],
      needsApproval: [{ ruleId: "gh-hold", effects: ["destructive"], why: "hold rule" }],
      deniedBy: ["gh-deny"],
    });
  });
  it("lists environments when every granting rule names them", () => {
    const radius = blastRadius(policy("rules:\n  - { service: railway, environments: [staging, dev], effects: [read] }"));
    expect(radius.services[0]?.environments).toEqual(["dev", "staging"]);
  });
  it("ignores expired rules when given a time", () => {
    const p = policy('rules:\n  - { service: railway, effects: [write], expires_at: "2026-01-01T00:00:00Z" }');
    expect(blastRadius(p, NOW).services).toEqual([]);
    expect(blastRadius(p).services.length).toBe(1);
  });
  it("a deny-only service reaches nothing", () => {
    const radius = blastRadius(policy("rules:\n  - { id: d, service: github, decision: deny }"));
    expect(radius.services[0]?.highestEffect).toBeNull();
  });
});
