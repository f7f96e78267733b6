import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { approveAndAllow, previewApproveAndAllow } from "@/lib/approvals/allow-rule";
import type { Actor } from "@/lib/auth/actor";
import { makeUser } from "../../support/factories";
import { viaProxy } from "../../support/proxy-client";
import { onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

const RAILWAY = "backboard.railway.com";
const POLICY = "unlisted: deny\n# irreversible actions on staging wait for a person\nrules:\n  - service: railway\n    environments: [staging]\n    effects: [read, write, destructive, irreversible]\n";
const del = (volume: string) => JSON.stringify({ query: `mutation { volumeDelete(volumeId: "${volume}") }` });

describe("approve and allow this operation on this resource for the rest of the task", () => {
  let h: ProxyHarness;
  let railway: Upstream;
  const send = (token: string, body: string) =>
    viaProxy(h.proxyPort, `http://${RAILWAY}:${railway.port}/graphql/v2`, { token, headers: { "content-type": "application/json" }, body });
  const pendingFor = async (agentId: string) => {
    for (let i = 0; i < 500; i++) {
      const row = await h.t.db.approval.findFirst({ where: { status: "pending", agentId } });
      if (row) return row;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error("no hold appeared");
  };

  beforeAll(async () => {
    railway = await startHttpUpstream();
    h = await startProxyHarness({ env: { BULKHEAD_HOLD_TIMEOUT_SECONDS: "10" } });
    await h.addService(onLoopback("railway", railway.port, { scheme: "http" }));
    await h.t.db.setting.create({ data: { key: "inventory.yaml", value: "entries:\n  - environment: staging\n    service: railway\n    resources: [vol_a, vol_b]\n" } });
  });
  afterAll(async () => {
    await h.close();
    await railway.close();
  });

  it("shows the rule as a diff, then approves and adds exactly that rule; the same action then runs, another is still held", async () => {
    const { token, agentId, taskId } = await h.newTask(POLICY);
    const approver = await makeUser(h.t.db, "approver");
    const before = railway.hits.length;
    const first = send(token, del("vol_a"));
    const approval = await pendingFor(agentId);
    const preview = await previewApproveAndAllow(h.t.db, approver.actor, approval.id);
    expect(preview.why).toBeNull();
    expect(preview.added.every((l) => l.startsWith("+ "))).toBe(true);
    expect(preview.added.join("\n")).toContain("operations:");
    expect(preview.added.join("\n")).toContain("vol_a");
    expect(preview.added.join("\n")).toContain("waive_approval: true");
    expect(preview.after).toContain("# irreversible actions on staging wait for a person");

    // A stale session cannot do it: it lets future requests through without anyone.
    const stale: Actor = { ...(approver.actor as Extract<Actor, { kind: "user" }>), authenticatedAt: Date.now() - 3600_000 };
    await expect(approveAndAllow(h.t.db, stale, approval.id)).rejects.toMatchObject({ code: "STEP_UP_REQUIRED" });
    expect((await h.t.db.approval.findUniqueOrThrow({ where: { id: approval.id } })).status).toBe("pending");

    const outcome = await approveAndAllow(h.t.db, approver.actor, approval.id, "fine for this task");
    expect(outcome).toMatchObject({ status: "approved", policyVersion: 2 });
    expect((await first).status).toBe(200);
    const event = await h.t.db.auditEvent.findFirstOrThrow({ where: { type: "task.policy_changed", taskId } });
    expect(event.data).toMatchObject({ fromVersion: 1, toVersion: 2, viaApproval: approval.id });
    await h.sync();

    const again = await send(token, del("vol_a"));
    expect(again.status).toBe(200);
    expect(await h.t.db.approval.count({ where: { agentId } })).toBe(1);
    const other = send(token, del("vol_b"));
    const held = await pendingFor(agentId);
    expect(held.id).not.toBe(approval.id);
    expect(railway.hits.length).toBe(before + 2);
    await h.t.db.approval.update({ where: { id: held.id }, data: { status: "denied", decidedAt: new Date() } });
    expect((await other).status).toBe(403);
  });

  it("is refused when several approvers are required", async () => {
    await h.t.db.setting.upsert({ where: { key: "approvals.required_by_effect" }, create: { key: "approvals.required_by_effect", value: { irreversible: 2 } }, update: { value: { irreversible: 2 } } });
    try {
      const { token, agentId } = await h.newTask(POLICY);
      const approver = await makeUser(h.t.db, "approver");
      const pending = send(token, del("vol_a"));
      const approval = await pendingFor(agentId);
      const preview = await previewApproveAndAllow(h.t.db, approver.actor, approval.id);
      expect(preview.possible).toBe(false);
      expect(preview.why).toMatch(/needs 2 approvers/);
      await expect(approveAndAllow(h.t.db, approver.actor, approval.id)).rejects.toThrow(/Approve once instead/);
      await h.t.db.approval.update({ where: { id: approval.id }, data: { status: "denied", decidedAt: new Date() } });
      expect((await pending).status).toBe(403);
    } finally {
      await h.t.db.setting.update({ where: { key: "approvals.required_by_effect" }, data: { value: {} } });
    }
  });
});
