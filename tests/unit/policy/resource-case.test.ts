/**
 * Resource patterns and case: a deny rule matches a resource in any case (changing case cannot
 * dodge it); an allow or hold rule matches it as written unless the service names resources
 * without regard to case. On a case-sensitive API `Kx9Prod` and `kx9prod` are two resources: an
 * approval's "allow for the rest of the task" pinned to the first let the second be deleted
 * without anyone asked.
 */
import { describe, expect, it } from "vitest";
import { decide } from "@/lib/policy/decide";
import { action, NOW, snapshot } from "./support";

const pinned = snapshot(`
unlisted: hold
rules:
  - id: approved-1
    service: items
    resources: [Kx9Prod]
    operations: [items.delete]
    effects: [irreversible]
    waive_approval: true
  - id: no-secrets
    service: items
    resources: [secrets-*]
    decision: deny
  - id: reads
    service: items
    resources: [Report-*]
    effects: [read]
`);

const del = (resource: string, caseInsensitive = false) => ({ ...action("items", "production", "items.delete", "irreversible", resource), ...(caseInsensitive ? { caseInsensitive: true as const } : {}) });

describe("resource patterns and case", () => {
  it("an allow rule (an approval's pinned one) reaches the resource as written, not its case variants", () => {
    expect(decide(pinned, [del("Kx9Prod")], NOW)).toMatchObject({ decision: "allow", ruleId: "approved-1" });
    for (const variant of ["kx9prod", "KX9PROD", "kX9pROD"]) {
      expect(decide(pinned, [del(variant)], NOW).decision, variant).toBe("hold");
    }
    expect(decide(pinned, [action("items", "production", "items.get", "read", "report-1")], NOW).decision).toBe("hold");
    expect(decide(pinned, [action("items", "production", "items.get", "read", "Report-1")], NOW).decision).toBe("allow");
  });

  it("on a service that ignores case (GitHub's names), an allow rule matches in any case", () => {
    expect(decide(pinned, [del("kx9prod", true)], NOW)).toMatchObject({ decision: "allow", ruleId: "approved-1" });
  });

  it("a deny rule still matches in any case", () => {
    for (const resource of ["secrets-1", "SECRETS-1", "Secrets-1"]) {
      expect(decide(pinned, [action("items", "production", "items.get", "read", resource)], NOW).decision, resource).toBe("deny");
    }
  });
});
