import { describe, expect, it } from "vitest";
import { parsePolicyChange } from "@/proxy-worker/policy/changes";

const id = "3f2a9c1e-8b4d-4e2f-9a6b-1c2d3e4f5a6b";

describe("what a bulkhead_policy notification says changed", () => {
  it("names one task, agent, token or credential", () => {
    expect(parsePolicyChange(`tasks:${id}`)).toEqual({ kind: "task", id });
    expect(parsePolicyChange(`agents:${id}`)).toEqual({ kind: "agent", id });
    expect(parsePolicyChange("issued_tokens:i4Lx1MfZBXRMgsepJdKLzA")).toEqual({ kind: "token", jti: "i4Lx1MfZBXRMgsepJdKLzA" });
    expect(parsePolicyChange(`credentials:${id}`)).toEqual({ kind: "credential", id });
    // A retired secret written, pruned or resealed: the credentials (and their retired secrets) are re-read.
    expect(parsePolicyChange(`retired_secrets:${id}`)).toEqual({ kind: "credential", id });
  });

  it("anything else asks for a full reload: table names, unknown tables, bad keys, oversized payloads", () => {
    for (const payload of [
      undefined,
      "",
      "tasks",
      "services",
      "settings:inventory.yaml",
      "sandboxes:10.0.0.2",
      `users:${id}`,
      "tasks:",
      "tasks:not-a-uuid",
      `tasks:${id}:extra`,
      `agents:${id} `,
      "issued_tokens:",
      "issued_tokens:has space",
      "issued_tokens:a/b",
      `issued_tokens:${"x".repeat(129)}`,
      `credentials:${"y".repeat(8000)}`,
      `__proto__:${id}`,
      `constructor:${id}`,
    ]) {
      expect(parsePolicyChange(payload), String(payload).slice(0, 40)).toBeNull();
    }
  });
});
