import { randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decideApproval } from "@/lib/approvals/decide-approval";
import { deliverDue, expireOverdueApprovals, type DispatchOptions } from "@/lib/webhooks/dispatcher";
import { verifySignature } from "@/lib/webhooks/sign";
import type { WebhookNetworkPolicy } from "@/lib/webhooks/destination";
import { createWebhook, deleteWebhook, listDeliveries } from "@/lib/webhooks/webhooks";
import { makeUser } from "../../support/factories";
import { viaProxy } from "../../support/proxy-client";
import { onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

const RAILWAY = "backboard.railway.com";
const POLICY = "unlisted: deny\nrules:\n  - service: railway\n    environments: [staging]\n    effects: [read, write, destructive, irreversible]\n";

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A real webhook receiver on loopback that fails the first `failures` requests with 503. */
async function startReceiver(failures: number) {
  const received: Received[] = [];
  let failing = failures;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      if (failing-- > 0) res.writeHead(503).end("busy");
      else res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe("approval webhooks: queued with the change, signed, retried, never in the way", () => {
  let h: ProxyHarness;
  let railway: Upstream;
  const dashboardKey = randomBytes(32);
  // The receivers listen on loopback, which an operator has to allow (BULKHEAD_WEBHOOK_ALLOWED_NETWORKS).
  const network: WebhookNetworkPolicy = { allowedNetworks: ["127.0.0.1/32"], ownPorts: [] };
  const options: DispatchOptions = { dashboardKey, publicUrl: "https://bulkhead.example.test", retryBaseMs: 50, maxAttempts: 3, timeoutMs: 1000, network };
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
  const drain = async (until: () => Promise<boolean>) => {
    for (let i = 0; i < 200 && !(await until()); i++) {
      await deliverDue(h.t.db, options);
      await new Promise((r) => setTimeout(r, 25));
    }
  };

  beforeAll(async () => {
    railway = await startHttpUpstream();
    h = await startProxyHarness({ env: { BULKHEAD_HOLD_TIMEOUT_SECONDS: "20" } });
    await h.addService(onLoopback("railway", railway.port, { scheme: "http" }));
    await h.t.db.setting.create({ data: { key: "inventory.yaml", value: "entries:\n  - environment: staging\n    service: railway\n    resources: [vol_staging]\n" } });
  });
  afterAll(async () => {
    await h.close();
    await railway.close();
  });

  it("a hold and its decision reach the receiver signed over timestamp and body, after retries with backoff", async () => {
    const receiver = await startReceiver(2);
    const hook = await createWebhook(h.t.db, h.admin, dashboardKey, network, { name: "sec-team", url: receiver.url });
    expect(hook.signingSecret).toMatch(/^whsec_/);
    const stored = await h.t.db.webhook.findUniqueOrThrow({ where: { id: hook.id } });
    expect(stored.secretSealed).not.toContain(hook.signingSecret);
    try {
      const { token, agentId } = await h.newTask(POLICY);
      const pending = send(token, JSON.stringify({ query: 'mutation { volumeDelete(volumeId: "vol_staging") }' }));
      const approval = await pendingFor(agentId);
      await drain(async () => receiver.received.length >= 3);
      expect(receiver.received).toHaveLength(3);
      const [d] = await listDeliveries(h.t.db, h.admin, { webhookId: hook.id });
      expect(d).toMatchObject({ event: "hold", status: "delivered", attempts: 3, lastStatus: 204 });
      const last = receiver.received[2]!;
      const signature = String(last.headers["bulkhead-signature"]);
      expect(verifySignature(hook.signingSecret, signature, last.body, Math.floor(Date.now() / 1000))).toBe(true);
      expect(verifySignature(hook.signingSecret, signature, last.body.replace("hold", "held"), Math.floor(Date.now() / 1000))).toBe(false);
      expect(verifySignature("whsec_wrong", signature, last.body, Math.floor(Date.now() / 1000))).toBe(false);
      expect(JSON.parse(last.body)).toMatchObject({ event: "hold", approvalId: approval.id, status: "pending", cardUrl: `https://bulkhead.example.test/approvals/${approval.id}` });

      await decideApproval(h.t.db, (await makeUser(h.t.db, "approver")).actor, approval.id, "approve");
      expect((await pending).status).toBe(200);
      await drain(async () => receiver.received.some((r) => JSON.parse(r.body).event === "decided"));
      expect(receiver.received.map((r) => JSON.parse(r.body).event)).toContain("decided");
    } finally {
      await deleteWebhook(h.t.db, h.admin, hook.id);
      await receiver.close();
    }
  });

  it("a receiver that is down delays neither the hold nor the decision, and gives up after the last retry", async () => {
    const gone = await startReceiver(0);
    await gone.close(); // nothing listens there any more
    const hook = await createWebhook(h.t.db, h.admin, dashboardKey, network, { name: "down", url: gone.url, events: ["hold", "decided"] });
    try {
      const { token, agentId } = await h.newTask(POLICY);
      const started = Date.now();
      const pending = send(token, JSON.stringify({ query: 'mutation { volumeDelete(volumeId: "vol_staging") }' }));
      const approval = await pendingFor(agentId);
      await decideApproval(h.t.db, (await makeUser(h.t.db, "approver")).actor, approval.id, "approve");
      expect((await pending).status).toBe(200);
      expect(Date.now() - started).toBeLessThan(5000);
      await drain(async () => (await h.t.db.webhookDelivery.count({ where: { webhookId: hook.id, status: "failed" } })) === 2);
      const rows = await listDeliveries(h.t.db, h.admin, { webhookId: hook.id });
      expect(rows.map((r) => [r.event, r.status, r.attempts])).toEqual(expect.arrayContaining([["hold", "failed", 3], ["decided", "failed", 3]]));
      expect(rows[0]!.lastError).toBeTruthy();
    } finally {
      await deleteWebhook(h.t.db, h.admin, hook.id);
    }
  });

  it("Slack format: a link to the card (never a decision), agent strings escaped in code spans; a cancellation is sent as such", async () => {
    const receiver = await startReceiver(0);
    const hook = await createWebhook(h.t.db, h.admin, dashboardKey, network, { name: "slack", url: receiver.url, format: "slack" });
    try {
      const { token, agentId, taskId } = await h.newTask(POLICY);
      const pending = send(token, JSON.stringify({ query: 'mutation { volumeDelete(volumeId: "vol_staging") } # <https://evil.example|Approve now> @channel `x`' }));
      const approval = await pendingFor(agentId);
      await drain(async () => receiver.received.length >= 1);
      const text = (JSON.parse(receiver.received[0]!.body) as { text: string }).text;
      expect(text).toContain(`<https://bulkhead.example.test/approvals/${approval.id}|Open the approval card>`);
      expect(text).not.toMatch(/approve\?|\/approve\b|decide=/i);
      expect(text).toContain("`volumeDelete`");
      // Cancellation (the task ended) is delivered as such.
      await h.t.db.$transaction(async (tx) => {
        await tx.task.update({ where: { id: taskId }, data: { status: "ended", endedAt: new Date() } });
        const { cancelApprovals } = await import("@/lib/approvals/cancel");
        await cancelApprovals(tx, { taskIds: [taskId] }, "task_ended", h.admin);
      });
      expect((await pending).status).toBe(403);
      await drain(async () => receiver.received.length >= 2);
      expect((JSON.parse(receiver.received[1]!.body) as { text: string }).text).toContain("cancelled");
    } finally {
      await deleteWebhook(h.t.db, h.admin, hook.id);
      await receiver.close();
    }
  });

  it("the sweep expires holds nobody waits for, which queues their expired event", async () => {
    const receiver = await startReceiver(0);
    const hook = await createWebhook(h.t.db, h.admin, dashboardKey, network, { name: "expiry", url: receiver.url, events: ["expired"] });
    try {
      const { token, agentId } = await h.newTask(POLICY);
      const held = await viaProxy(h.proxyPort, `http://${RAILWAY}:${railway.port}/graphql/v2`, {
        token,
        headers: { "content-type": "application/json", prefer: "respond-async" },
        body: JSON.stringify({ query: 'mutation { volumeDelete(volumeId: "vol_staging") }' }),
      });
      expect(held.status).toBe(202);
      const approval = await h.t.db.approval.findFirstOrThrow({ where: { agentId } });
      // As the sweep sees it a minute later (the hold times out after 20 s).
      expect(await expireOverdueApprovals(h.t.db)).toBe(0);
      expect(await expireOverdueApprovals(h.t.db, new Date(Date.now() + 60_000))).toBeGreaterThanOrEqual(1);
      await drain(async () => receiver.received.length >= 1);
      expect(JSON.parse(receiver.received[0]!.body)).toMatchObject({ event: "expired", approvalId: approval.id, status: "expired" });
    } finally {
      await deleteWebhook(h.t.db, h.admin, hook.id);
      await receiver.close();
    }
  });
});
