import { describe, expect, it } from "vitest";
import { formAlert } from "@/components/ui/use-form-action";

const failed = (message: string, fieldErrors?: Record<string, string[]>) => ({ ok: false as const, message, fieldErrors });

describe("a form's alert", () => {
  it("does not repeat a refusal its field already shows", () => {
    const ttl = "The time to live must be between 1m and 1d (e.g. 15m, 2h).";
    expect(formAlert(failed(ttl, { ttl: [ttl] }), ["ttl", "purpose"])).toBe("Please correct the highlighted field.");
    // The same sentence without its full stop is the same sentence.
    expect(formAlert(failed("No such task", { task: ["No such task."] }), ["task"])).toBe("Please correct the highlighted field.");
    expect(formAlert(failed("Name taken.", { name: ["Name taken."], owner: ["Unknown owner."] }), ["name", "owner"])).toBe("Please correct the highlighted fields.");
  });

  it("keeps a message of its own, and says what no field of the form shows", () => {
    expect(formAlert(failed("The policy is not valid.", { policyYaml: ["rules[0]: unknown effect"] }), ["policyYaml"])).toBe("The policy is not valid.");
    expect(formAlert(failed("Please correct the highlighted fields.", { email: ["Enter an email."], role: ["Choose a role."] }), ["email"])).toBe("Please correct the highlighted fields. Choose a role.");
    // A refusal only about a field the form does not show is said once, not lost.
    expect(formAlert(failed("Unknown role.", { role: ["Unknown role."] }), ["email"])).toBe("Unknown role.");
    expect(formAlert(failed("The database is unreachable."), ["email"])).toBe("The database is unreachable.");
  });

  it("says nothing without a failed submission", () => {
    expect(formAlert(null, ["a"])).toBeNull();
    expect(formAlert({ ok: true, data: null }, ["a"])).toBeNull();
  });
});
