/**
 * What is saved is what was written, and a refusal says one thing: a YAML tag the reader does
 * not know (`!!js/function "x"`) was dropped and its value saved as text ("Saved."), and a port
 * of 10^23 was told both "Enter 9007199254740991 or less." and "Enter 65535 or less.".
 */
import { describe, expect, it } from "vitest";
import { parseInventoryYaml } from "@/lib/semantics/inventory";
import { parseServicesYaml } from "@/lib/semantics/registry";
import { parsePolicy } from "@/lib/policy/parse";

const service = (hosts: string, ports = "[443]") => `services:\n  - id: a\n    hosts: ${hosts}\n    protocol: rest\n    ports: ${ports}\n`;

describe("YAML the reader does not fully understand is refused", () => {
  it("an unknown tag, in a services file, an inventory and a policy", () => {
    for (const tag of ['!!js/function "x"', "!custom a.example.com"]) {
      const services = parseServicesYaml(service(`[${tag}]`));
      expect(services.ok, tag).toBe(false);
      if (!services.ok) expect(services.errors[0]).toMatch(/^line 3: Unresolved tag.*write the value without a tag$/);
    }
    expect(parseInventoryYaml("entries:\n  - environment: !env staging\n    resources: [x]\n").ok).toBe(false);
    const policy = parsePolicy("unlisted: deny\nrules:\n  - service: !svc railway\n    effects: [read]\n");
    expect(policy.ok).toBe(false);
    if (!policy.ok) expect(policy.errors[0]).toMatchObject({ line: 3, message: expect.stringMatching(/Unresolved tag/) });
  });

  it("the standard tags are read (the control)", () => {
    expect(parseServicesYaml(service("[!!str a.example.com]")).ok).toBe(true);
  });

  it("a number past two bounds is told the tighter one only", () => {
    const result = parseServicesYaml(service("[a.example.com]", "[99999999999999999999999]"));
    expect(result).toEqual({ ok: false, errors: ["services[0].ports.0: Enter 65535 or less."] });
  });
});

describe("keys YAML tells apart but the data does not", () => {
  it("123 and \"123\", true and \"true\" in one mapping are refused, in services and policies", () => {
    const services = parseServicesYaml(`services:\n  - id: a\n    hosts: [a.example.com]\n    protocol: graphql\n    graphql:\n      paths: [/graphql]\n      persistedQueries:\n        123: "query { harmless }"\n        "123": "mutation { volumeDelete(id: 1) }"\n`);
    expect(services.ok).toBe(false);
    if (!services.ok) expect(services.errors[0]).toMatch(/^line 9: the key "123" appears twice in one mapping \(written 123 and "123"\)/);
    const policy = parsePolicy('unlisted: deny\nrules:\n  - service: railway\n    effects: [read]\n    true: 1\n    "true": 2\n');
    expect(policy.ok).toBe(false);
  });

  it("distinct keys are fine (the control)", () => {
    expect(parseServicesYaml(`services:\n  - id: a\n    hosts: [a.example.com]\n    protocol: graphql\n    graphql:\n      paths: [/graphql]\n      persistedQueries:\n        "123": "query { a }"\n        "124": "query { b }"\n`).ok).toBe(true);
  });
});
