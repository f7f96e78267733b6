import { describe, expect, it } from "vitest";
import { RevocationSet } from "@/lib/identity/revocation";
import { NOW } from "./helpers";

const at = (s: number) => new Date(NOW.getTime() + s * 1000);

describe("RevocationSet", () => {
  it("records task, agent and jti revocations independently", () => {
    const r = new RevocationSet();
    r.revokeTask("task_1");
    r.suspendAgent("agent_1");
    r.revokeJti("jti_AAAAAAAAAAAAAAAA");
    expect(r.isTaskRevoked("task_1")).toBe(true);
    expect(r.isTaskRevoked("agent_1")).toBe(false);
    expect(r.isAgentSuspended("agent_1")).toBe(true);
    expect(r.isAgentSuspended("task_1")).toBe(false);
    expect(r.isJtiRevoked("jti_AAAAAAAAAAAAAAAA")).toBe(true);
    r.reinstateAgent("agent_1");
    expect(r.isAgentSuspended("agent_1")).toBe(false);
  });

  it("replaceAll swaps in a snapshot (missed notifications are repaired)", () => {
    const r = new RevocationSet();
    r.revokeTask("stale");
    const before = r.generation;
    r.replaceAll({
      revokedTasks: ["task_1", { id: "task_2", until: at(60) }],
      suspendedAgents: ["agent_1"],
      revokedJtis: [{ id: "jti_1" }],
    });
    expect(r.generation).toBeGreaterThan(before);
    expect(r.isTaskRevoked("stale")).toBe(false);
    expect(r.isTaskRevoked("task_1")).toBe(true);
    expect(r.isTaskRevoked("task_2")).toBe(true);
    expect(r.isAgentSuspended("agent_1")).toBe(true);
    expect(r.isJtiRevoked("jti_1")).toBe(true);
    expect(r.sizes).toEqual({ tasks: 2, agents: 1, jtis: 1 });
  });

  it("prunes only entries whose tokens are expired beyond the grace, and never shortens", () => {
    const r = new RevocationSet();
    r.revokeTask("task_short", at(10));
    r.revokeTask("task_forever");
    r.revokeJti("jti_long", at(100));
    r.revokeJti("jti_long", at(20)); // a later, shorter message must not shorten it
    expect(r.prune(at(14))).toBe(0); // within 5 s grace
    expect(r.prune(at(16))).toBe(1);
    expect(r.isTaskRevoked("task_short")).toBe(false);
    expect(r.isTaskRevoked("task_forever")).toBe(true);
    expect(r.isJtiRevoked("jti_long")).toBe(true);
    expect(r.prune(at(106))).toBe(1);
    expect(r.isJtiRevoked("jti_long")).toBe(false);
  });
});
