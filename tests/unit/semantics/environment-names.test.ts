/**
 * An environment's name follows one rule wherever it is written (the inventory, a descriptor's
 * fixed environment, a scope, a credential's binding): letters, digits, ".", "_" and "-". The
 * inventory took any text ("staging eu", "*", a NUL, a direction override that read as
 * "staging"), and a credential bound to ["staging eu"] was bound to "staging" and "eu".
 */
import { describe, expect, it } from "vitest";
import { parseInventoryYaml } from "@/lib/semantics/inventory";
import { parseServicesYaml } from "@/lib/semantics/registry";
import { canonicalEnvironments } from "@/lib/vault/binding";

describe("environment names", () => {
  const hostile = ["staging eu", "Prod:uction*", "*", "staging\u0000x", "staging\u202e\u200b", "-staging", "stag,ing"];

  it("the inventory and a descriptor refuse a name a scope or a binding could not write", () => {
    for (const name of hostile) {
      expect(parseInventoryYaml(`entries:\n  - environment: ${JSON.stringify(name)}\n    resources: [x]\n`).ok, JSON.stringify(name)).toBe(false);
      expect(parseServicesYaml(`services:\n  - id: a\n    hosts: [a.example.com]\n    protocol: rest\n    environment: ${JSON.stringify(name)}\n`).ok, JSON.stringify(name)).toBe(false);
    }
    for (const name of ["staging", "eu-west-1", "prod.v2", "Staging_EU"]) {
      expect(parseInventoryYaml(`entries:\n  - environment: ${name}\n    resources: [x]\n`).ok, name).toBe(true);
    }
  });

  it("a binding's list names one environment per element, never split", () => {
    expect(canonicalEnvironments(["staging eu"]).ok).toBe(false);
    expect(canonicalEnvironments(["staging", "eu"])).toEqual({ ok: true, text: "eu staging" });
    // Typed as text (a form field, a flag), spaces and commas separate names, as before.
    expect(canonicalEnvironments("staging, eu")).toEqual({ ok: true, text: "eu staging" });
  });
});
