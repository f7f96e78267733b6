import { describe, expect, it } from "vitest";
import { describeError, describeErrorJson } from "@/cli/errors";
import { AppError } from "@/lib/errors/app-error";

describe("the CLI's error line", () => {
  const policy = new AppError("INVALID_INPUT", "The policy is not valid.", {
    details: { fieldErrors: { policyYaml: ['line 4: rules[0].operations[0]: operation "volumDelete" is not an operation of service railway', "line 7: rules[1].service: service\n\"railwy\" does not exist"] } },
  });

  it("names what is wrong with each field, on one line, in text and in --json", () => {
    const line = describeError(policy);
    expect(line).toBe('The policy is not valid. policyYaml: line 4: rules[0].operations[0]: operation "volumDelete" is not an operation of service railway; policyYaml: line 7: rules[1].service: service "railwy" does not exist');
    expect(line).not.toContain("\n");
    const json = describeErrorJson(policy);
    expect(json).toMatchObject({ code: "invalid_input", message: line });
    expect(json.issues).toEqual([
      { path: "policyYaml", message: 'line 4: rules[0].operations[0]: operation "volumDelete" is not an operation of service railway' },
      { path: "policyYaml", message: 'line 7: rules[1].service: service "railwy" does not exist' },
    ]);
  });

  it("does not repeat a reason the message already gives, and ignores details that are not field errors", () => {
    const ttl = "The time to live must be between 1m and 8h.";
    expect(describeError(new AppError("INVALID_INPUT", ttl, { details: { fieldErrors: { ttl: [ttl] } } }))).toBe(ttl);
    expect(describeError(new AppError("FORBIDDEN", "Re-authenticate first.", { details: { stepUp: { maxAgeSeconds: 300 } } }))).toBe("Re-authenticate first.");
    expect(describeErrorJson(new AppError("NOT_FOUND", "No such task.")).issues).toBeUndefined();
  });
});
