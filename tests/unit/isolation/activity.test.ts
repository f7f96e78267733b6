import { describe, expect, it } from "vitest";
import { createLogger } from "@/lib/log";
import { SandboxActivity } from "@/proxy-worker/isolation/activity";
import type { DropCount } from "@/proxy-worker/isolation/fence";
import type { DecisionEvent } from "@/proxy-worker/proxy/types";

const A = { sandboxId: "sb-a", taskId: "task-a" };
const flow = (port: number, packets: number): DropCount => ({ source: "10.0.0.2", destination: "203.0.113.9", protocol: "udp", port, packets });

/** An audit that refuses while `refusing` is set (its log full or broken), and what it took. */
function harness() {
  const taken: DecisionEvent[] = [];
  const blocked: Array<{ sandboxId: string; attempts: number }> = [];
  const saved: unknown[] = [];
  let marks = 0;
  const state = { refusing: false };
  const activity = new SandboxActivity(
    {
      record: async (event: DecisionEvent) => {
        if (state.refusing) throw new Error("audit log refused the event");
        taken.push(event);
      },
    },
    () => "agent-a",
    createLogger("test", "silent"),
    async (sandboxId, attempts) => void blocked.push({ sandboxId, attempts }),
    60_000,
    { mark: () => ++marks, save: async (mark) => void saved.push(mark) },
  );
  return { activity, taken, blocked, saved, state };
}

describe("sandbox activity: blocked attempts the audit refused", () => {
  it("are kept and written with what came since once the audit takes them, counted once", async () => {
    const h = harness();
    h.activity.drops(A, flow(9999, 3), 3);
    h.activity.dns(A, "10.0.0.2", "refused", "exfil.example.", "A");
    h.state.refusing = true;
    await h.activity.flush();
    expect(h.taken).toEqual([]);
    expect(h.blocked).toEqual([]);
    // Not checkpointed: a worker that stopped now would leave these drops to be counted again.
    expect(h.saved).toEqual([]);

    h.activity.drops(A, flow(9999, 2), 2);
    h.activity.drops(A, flow(53, 1), 1);
    h.activity.dns(A, "10.0.0.2", "nxdomain", "other.example.", "A");
    h.state.refusing = false;
    await h.activity.flush();
    const escape = h.taken.filter((e) => e.type === "sandbox.escape_blocked");
    expect(escape).toHaveLength(1);
    expect(escape[0]!.taskId).toBe("task-a");
    expect(escape[0]!.data).toMatchObject({ attempts: 6, flows: [flow(9999, 5), flow(53, 1)], moreFlows: 0 });
    const dns = h.taken.filter((e) => e.type === "sandbox.dns");
    expect(dns).toHaveLength(1);
    expect(dns[0]!.data).toMatchObject({ refused: 1, nxdomain: 1 });
    expect(h.blocked).toEqual([{ sandboxId: "sb-a", attempts: 6 }]);
    expect(h.saved).toEqual([2]);

    // Nothing left over: the next flush writes nothing again.
    await h.activity.flush();
    expect(h.taken).toHaveLength(2);
  });

  it("a long refusal does not grow the kept tally: the same flow's packets are added up", async () => {
    const h = harness();
    h.state.refusing = true;
    for (let i = 0; i < 50; i++) {
      h.activity.drops(A, flow(9999, 1), 1);
      await h.activity.flush();
    }
    h.state.refusing = false;
    await h.activity.flush();
    expect(h.taken).toHaveLength(1);
    expect(h.taken[0]!.data).toMatchObject({ attempts: 50, flows: [flow(9999, 50)] });
  });
});
