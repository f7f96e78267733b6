import { randomBytes } from "node:crypto";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decideApproval } from "@/lib/approvals/decide-approval";
import { isAppError } from "@/lib/errors/app-error";
import type { Lookup } from "@/lib/net/resolve";
import type { WebhookNetworkPolicy } from "@/lib/webhooks/destination";
import { deliverDue, type DispatchOptions } from "@/lib/webhooks/dispatcher";
import { createWebhook, deleteWebhook, listDeliveries, listWebhooks } from "@/lib/webhooks/webhooks";
import { makeUser } from "../../support/factories";
import { viaProxy } from "../../support/proxy-client";
import { onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { createTestPki, startHttpUpstream, type TestPki, type Upstream } from "../../support/upstreams";

const RAILWAY = "backboard.railway.com";
const POLICY = "unlisted: deny\nrules:\n  - service: railway\n    environments: [staging]\n    effects: [read, write, destructive, irreversible]\n";
const PUBLIC = "93.184.216.34";

/** A resolver answering from a table (absolute names, as the sender asks); anything else does not exist. */
function tableLookup(table: Record<string, string[]>): Lookup {
  return async (hostname) => {
    const answers = table[hostname.replace(/\.$/, "")];
    if (!answers) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" });
    return answers.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
  };
}

interface Receiver {
  port: number;
  received: Array<{ host: string | undefined; path: string | undefined }>;
  close(): Promise<void>;
}

/** A receiver on loopback that records what reached it and answers with `status` (and `headers`). */
async function startReceiver(status = 204, headers: Record<string, string> = {}, tls?: { cert: string; key: string }): Promise<Receiver> {
  const received: Receiver["received"] = [];
  const listener: http.RequestListener = (req, res) => {
    req.resume();
    req.on("end", () => {
      received.push({ host: req.headers.host, path: req.url });
      res.writeHead(status, headers).end();
    });
  };
  const server = tls ? https.createServer(tls, listener) : http.createServer(listener);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    received,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe("webhook destinations: public receivers only, checked at creation and again on every delivery", () => {
  let h: ProxyHarness;
  let railway: Upstream;
  let pki: TestPki;
  const dashboardKey = randomBytes(32);

  const dispatch = (network: WebhookNetworkPolicy, ca?: string): DispatchOptions => ({
    dashboardKey,
    publicUrl: "https://bulkhead.example.test",
    retryBaseMs: 60_000,
    maxAttempts: 1,
    timeoutMs: 2000,
    network,
    ca,
  });

  /** Holds one request (answered 202), which queues a `hold` delivery for every webhook; returns a cleanup. */
  const holdOne = async () => {
    const { token, agentId } = await h.newTask(POLICY);
    const held = await viaProxy(h.proxyPort, `http://${RAILWAY}:${railway.port}/graphql/v2`, {
      token,
      headers: { "content-type": "application/json", prefer: "respond-async" },
      body: JSON.stringify({ query: 'mutation { volumeDelete(volumeId: "vol_staging") }' }),
    });
    expect(held.status).toBe(202);
    const approval = await h.t.db.approval.findFirstOrThrow({ where: { agentId } });
    return async () => {
      await decideApproval(h.t.db, (await makeUser(h.t.db, "approver")).actor, approval.id, "deny");
    };
  };

  /** Sends what is due until the webhook's one delivery has been attempted; returns it. */
  const attempted = async (webhookId: string, options: DispatchOptions) => {
    for (let i = 0; i < 200; i++) {
      await deliverDue(h.t.db, options);
      const [row] = await listDeliveries(h.t.db, h.admin, { webhookId });
      if (row && row.attempts > 0) return row;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error("the delivery was never attempted");
  };

  beforeAll(async () => {
    railway = await startHttpUpstream();
    pki = await createTestPki();
    h = await startProxyHarness({ env: { BULKHEAD_HOLD_TIMEOUT_SECONDS: "60" } });
    await h.addService(onLoopback("railway", railway.port, { scheme: "http" }));
    await h.t.db.setting.create({ data: { key: "inventory.yaml", value: "entries:\n  - environment: staging\n    service: railway\n    resources: [vol_staging]\n" } });
  });
  afterAll(async () => {
    await h.close();
    await railway.close();
  });

  it("refuses a receiver on this machine, a private network, link-local (metadata) or a local name, in any spelling, and stores nothing", async () => {
    const network: WebhookNetworkPolicy = {
      allowedNetworks: [],
      ownPorts: [h.proxyPort],
      lookup: tableLookup({ localhost: ["127.0.0.1", "::1"], "hooks.private.example": ["10.0.0.5"], "mixed.example": [PUBLIC, "127.0.0.1"], "metadata.example": ["169.254.169.254"] }),
    };
    const refused = [
      "http://127.0.0.1:8080/hook",
      "http://127.1/hook",
      "http://2130706433/hook",
      "http://0x7f.0.0.1/hook",
      "http://0.0.0.0:3000/hook",
      "http://[::1]:3000/hook",
      "http://[::ffff:127.0.0.1]/hook",
      "http://[::ffff:169.254.169.254]/latest",
      "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
      "http://[fe80::1]/hook",
      "http://10.1.2.3/hook",
      "http://172.16.0.1/hook",
      "http://192.168.1.1/hook",
      "http://100.64.0.1/hook",
      "http://[fd00::1]/hook",
      "http://localhost:3000/api/v1/agents",
      "http://LOCALHOST./hook",
      "http://metadata.google.internal/computeMetadata/v1/",
      "http://intranet/hook",
      "http://hooks.private.example/hook",
      "http://mixed.example/hook",
      "http://metadata.example/latest",
      "http://user:secret@hooks.example.com/hook",
    ];
    const before = { hooks: await h.t.db.webhook.count(), events: await h.t.db.auditEvent.count({ where: { type: "webhook.created" } }) };
    for (const url of refused) {
      const error = await createWebhook(h.t.db, h.admin, dashboardKey, network, { name: "nope", url }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(isAppError(error) && error.code === "INVALID_INPUT", `${url} was accepted (${String(error)})`).toBe(true);
      const message = (error as Error).message;
      expect(message, url).toMatch(url.includes("@") ? /no user name or password/ : /^Webhooks are sent to public addresses only \(.+\)\. .+BULKHEAD_WEBHOOK_ALLOWED_NETWORKS/);
      expect((error as { details: { fieldErrors: Record<string, string[]> } }).details.fieldErrors.url).toEqual([message]);
    }
    expect(await h.t.db.webhook.count()).toBe(before.hooks);
    expect(await h.t.db.auditEvent.count({ where: { type: "webhook.created" } })).toBe(before.events);
  });

  it("accepts a public address, and a name that does not resolve from here yet (each delivery checks it again)", async () => {
    const network: WebhookNetworkPolicy = { allowedNetworks: [], ownPorts: [], lookup: tableLookup({ "hooks.example.com": [PUBLIC] }) };
    const ids: string[] = [];
    for (const url of [`https://${PUBLIC}/hook`, "https://hooks.example.com/services/T0/B0/x", "https://not-yet.example.org/hook"]) {
      ids.push((await createWebhook(h.t.db, h.admin, dashboardKey, network, { name: "public", url })).id);
    }
    for (const id of ids) await deleteWebhook(h.t.db, h.admin, id);
  });

  it("a webhook removed while its delivery is being sent: nothing fails, the batch's other deliveries are recorded", async () => {
    let vanishingId = "";
    // This receiver's webhook is removed (its deliveries with it) before it answers.
    const vanishing = http.createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        void deleteWebhook(h.t.db, h.admin, vanishingId).then(() => res.writeHead(204).end());
      });
    });
    await new Promise<void>((r) => vanishing.listen(0, "127.0.0.1", r));
    const kept = await startReceiver();
    const network: WebhookNetworkPolicy = { allowedNetworks: ["127.0.0.1/32"], ownPorts: [] };
    vanishingId = (await createWebhook(h.t.db, h.admin, dashboardKey, network, { name: "vanishing", url: `http://127.0.0.1:${(vanishing.address() as AddressInfo).port}/hook` })).id;
    const keptHook = await createWebhook(h.t.db, h.admin, dashboardKey, network, { name: "kept", url: `http://127.0.0.1:${kept.port}/hook` });
    const release = await holdOne();
    try {
      await expect(h.t.db.webhookDelivery.count({ where: { webhookId: { in: [vanishingId, keptHook.id] } } })).resolves.toBe(2);
      // Both deliveries are due now and go in one batch.
      await expect(deliverDue(h.t.db, dispatch(network))).resolves.toBeGreaterThanOrEqual(2);
      expect(kept.received).toHaveLength(1);
      expect(await h.t.db.webhook.count({ where: { id: vanishingId } })).toBe(0);
      expect(await h.t.db.webhookDelivery.count({ where: { webhookId: vanishingId } })).toBe(0);
      const [row] = await listDeliveries(h.t.db, h.admin, { webhookId: keptHook.id });
      expect(row).toMatchObject({ status: "delivered", lastStatus: 204, attempts: 1 });
    } finally {
      await release();
      await deleteWebhook(h.t.db, h.admin, keptHook.id);
      await kept.close();
      vanishing.closeAllConnections();
      await new Promise<void>((r) => vanishing.close(() => r()));
    }
  });

  it("networks the operator allows are reachable, Bulkhead's own ports on this machine never are", async () => {
    const receiver = await startReceiver();
    try {
      const network: WebhookNetworkPolicy = { allowedNetworks: ["127.0.0.1/32"], ownPorts: [h.proxyPort, 3000] };
      const hook = await createWebhook(h.t.db, h.admin, dashboardKey, network, { name: "local", url: `http://127.0.0.1:${receiver.port}/hook` });
      await deleteWebhook(h.t.db, h.admin, hook.id);
      for (const url of [`http://127.0.0.1:${h.proxyPort}/`, "http://127.0.0.1:3000/api/v1/users"]) {
        await expect(createWebhook(h.t.db, h.admin, dashboardKey, network, { name: "self", url })).rejects.toThrow(/belongs to Bulkhead itself/);
      }
      // Still public-or-listed: another private network is refused, and the message names the list.
      await expect(createWebhook(h.t.db, h.admin, dashboardKey, network, { name: "other", url: "http://10.9.9.9/hook" })).rejects.toThrow(
        /The networks allowed besides public addresses are 127\.0\.0\.1\/32/,
      );
      // ::1 is loopback too, but not listed.
      await expect(createWebhook(h.t.db, h.admin, dashboardKey, network, { name: "v6", url: `http://[::1]:${receiver.port}/hook` })).rejects.toThrow(/public addresses only/);
    } finally {
      await receiver.close();
    }
  });

  it("a name that answered a public address when the webhook was added and a loopback one at delivery reaches nothing", async () => {
    const receiver = await startReceiver();
    const url = `http://hooks.flip.example:${receiver.port}/hook`;
    const hook = await createWebhook(h.t.db, h.admin, dashboardKey, { allowedNetworks: [], ownPorts: [], lookup: tableLookup({ "hooks.flip.example": [PUBLIC] }) }, { name: "flip", url });
    const release = await holdOne();
    try {
      const row = await attempted(hook.id, dispatch({ allowedNetworks: [], ownPorts: [], lookup: tableLookup({ "hooks.flip.example": ["127.0.0.1"] }) }));
      expect(row).toMatchObject({ status: "failed", lastStatus: null });
      expect(row.lastError).toMatch(/^destination refused: "hooks\.flip\.example" resolved to a forbidden address \(127\.0\.0\.1 is /);
      expect(receiver.received).toEqual([]);
    } finally {
      await release();
      await deleteWebhook(h.t.db, h.admin, hook.id);
      await receiver.close();
    }
  });

  it("a delivery connects to the address that was checked (the name is not looked up again) and follows no redirect", async () => {
    const target = await startReceiver();
    const receiver = await startReceiver(307, { location: `http://127.0.0.1:${target.port}/elsewhere` });
    const network: WebhookNetworkPolicy = { allowedNetworks: ["127.0.0.1/32"], ownPorts: [], lookup: tableLookup({ "hooks.checked.example": ["127.0.0.1"] }) };
    // The system resolver does not know this name: only the checked answer can have been dialed.
    const hook = await createWebhook(h.t.db, h.admin, dashboardKey, network, { name: "checked", url: `http://hooks.checked.example:${receiver.port}/hook?team=sec` });
    const release = await holdOne();
    try {
      const row = await attempted(hook.id, dispatch(network));
      expect(receiver.received).toEqual([{ host: `hooks.checked.example:${receiver.port}`, path: "/hook?team=sec" }]);
      expect(row).toMatchObject({ status: "failed", lastStatus: 307, lastError: "receiver answered 307" });
      expect(target.received).toEqual([]);
    } finally {
      await release();
      await deleteWebhook(h.t.db, h.admin, hook.id);
      await receiver.close();
      await target.close();
    }
  });

  it("https: the receiver's certificate is verified for the URL's name", async () => {
    const good = await startReceiver(204, {}, await pki.serverCert("hooks.tls.example").then((c) => ({ cert: c.certPem, key: c.keyPem })));
    const wrong = await startReceiver(204, {}, await pki.serverCert("someone-else.example").then((c) => ({ cert: c.certPem, key: c.keyPem })));
    const network: WebhookNetworkPolicy = { allowedNetworks: ["127.0.0.1/32"], ownPorts: [], lookup: tableLookup({ "hooks.tls.example": ["127.0.0.1"] }) };
    const ok = await createWebhook(h.t.db, h.admin, dashboardKey, network, { name: "tls", url: `https://hooks.tls.example:${good.port}/hook` });
    const bad = await createWebhook(h.t.db, h.admin, dashboardKey, network, { name: "tls-wrong", url: `https://hooks.tls.example:${wrong.port}/hook` });
    const release = await holdOne();
    try {
      expect(await attempted(ok.id, dispatch(network, pki.caPem))).toMatchObject({ status: "delivered", lastStatus: 204 });
      expect(good.received).toHaveLength(1);
      const refused = await attempted(bad.id, dispatch(network, pki.caPem));
      expect(refused).toMatchObject({ status: "failed", lastStatus: null });
      expect(refused.lastError).toMatch(/altnames|certificate/i);
      expect(wrong.received).toEqual([]);
    } finally {
      await release();
      await deleteWebhook(h.t.db, h.admin, ok.id);
      await deleteWebhook(h.t.db, h.admin, bad.id);
      await good.close();
      await wrong.close();
    }
  });

  // A webhook saved when its receiver was allowed (an earlier version accepted private and loopback
  // receivers; the operator may narrow BULKHEAD_WEBHOOK_ALLOWED_NETWORKS since) was listed as if it
  // worked: its failures showed only in each delivery's last answer, and nothing was said at start.
  it("a webhook whose receiver is no longer allowed is listed as refused, with why and what to set", async () => {
    const receiver = await startReceiver();
    const allowed: WebhookNetworkPolicy = { allowedNetworks: ["127.0.0.1/32"], ownPorts: [], lookup: tableLookup({ "hooks.office.example": ["127.0.0.1"] }) };
    const narrowed: WebhookNetworkPolicy = { ...allowed, allowedNetworks: [] };
    const literal = await createWebhook(h.t.db, h.admin, dashboardKey, allowed, { name: "office-ip", url: `http://127.0.0.1:${receiver.port}/hook` });
    const named = await createWebhook(h.t.db, h.admin, dashboardKey, allowed, { name: "office-name", url: `http://hooks.office.example:${receiver.port}/hook` });
    const release = await holdOne();
    try {
      const listed = async (network: WebhookNetworkPolicy) => new Map((await listWebhooks(h.t.db, h.admin, network)).map((w) => [w.id, w.refused]));
      let now = await listed(allowed);
      expect(now.get(literal.id)).toBeNull();
      expect(now.get(named.id)).toBeNull();
      // Narrowed: the address is refused at once (no delivery needed to know it).
      now = await listed(narrowed);
      expect(now.get(literal.id)).toMatch(/Webhooks are sent to public addresses only \(127\.0\.0\.1 is loopback\).*BULKHEAD_WEBHOOK_ALLOWED_NETWORKS/);
      // A name is known refused once a delivery to it was.
      expect(now.get(named.id)).toBeNull();
      expect(await attempted(named.id, dispatch(narrowed))).toMatchObject({ status: "failed", lastError: expect.stringMatching(/^destination refused: /) });
      now = await listed(narrowed);
      expect(now.get(named.id)).toMatch(/^Its latest delivery was refused \(.*loopback.*\)\. .*BULKHEAD_WEBHOOK_ALLOWED_NETWORKS/);
      expect(receiver.received).toEqual([]);
    } finally {
      await release();
      await deleteWebhook(h.t.db, h.admin, literal.id);
      await deleteWebhook(h.t.db, h.admin, named.id);
      await receiver.close();
    }
  });
});
