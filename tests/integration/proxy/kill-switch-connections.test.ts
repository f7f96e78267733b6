import net from "node:net";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setAgentSuspended } from "@/lib/agents/agents";
import { revokeTaskToken } from "@/lib/identity/task-tokens";
import { endTask } from "@/lib/tasks/tasks";
import { getCaCertificatePem } from "@/lib/tls/ca-store";
import { viaProxy } from "../../support/proxy-client";
import { onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { closedAfter, connectTunnel, requestOn, statuses, tlsOver } from "../../support/tunnel-client";
import { createTestPki, startHttpUpstream, startHttpsUpstream, type Upstream } from "../../support/upstreams";

const GITHUB = "api.github.com";
const READS = 'unlisted: deny\nrules:\n  - service: plain\n    effects: [read]\n  - service: github\n    resources: ["acme/app"]\n    effects: [read]\n  - service: opaque\n    operations: [tunnel]\n    effects: [irreversible]\n    waive_approval: true\n';

/**
 * What an agent already has open when its task is stopped: a keep-alive connection to the
 * explicit proxy, an intercepted CONNECT tunnel, a passthrough tunnel, a sandbox's transparent
 * connection. Each must be closed within a second of the kill switch, on the worker that holds
 * it, and nothing more may reach the upstreams (which count every request).
 */
describe("kill switches close what is open", () => {
  let h: ProxyHarness;
  let plain: Upstream;
  let github: Upstream;
  let opaque: Upstream;
  let caPem: string;
  let upstreamCaPem: string;
  let sandboxes = 0;

  beforeAll(async () => {
    const pki = await createTestPki();
    upstreamCaPem = pki.caPem;
    plain = await startHttpUpstream();
    github = await startHttpsUpstream(pki, GITHUB);
    opaque = await startHttpsUpstream(pki, "tunnel.test");
    h = await startProxyHarness({ upstreamCaPem: pki.caPem });
    await h.addService({ id: "plain", hosts: ["plain.test"], scheme: "http", ports: [plain.port], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    await h.addService(onLoopback("github", github.port));
    await h.addService({ id: "opaque", hosts: ["tunnel.test"], scheme: "https", ports: [opaque.port], protocol: "rest", proxy: { tls: "passthrough", internalAddresses: ["127.0.0.1/32"] } });
    caPem = (await getCaCertificatePem(h.t.db))!.certPem;
  });
  afterAll(async () => {
    await h.close();
    await Promise.all([plain.close(), github.close(), opaque.close()]);
  });

  const jtiOf = async (taskId: string) => (await h.t.db.issuedToken.findFirstOrThrow({ where: { taskId } })).jti;
  const plainGet = (extra = "") => `GET http://plain.test:${plain.port}/items HTTP/1.1\r\nHost: plain.test:${plain.port}\r\n${extra}\r\n`;
  const connect = async (port: number, localAddress?: string) => {
    const socket = net.connect({ host: "127.0.0.1", port, localAddress });
    await new Promise((r, j) => socket.once("connect", r).once("error", j));
    return socket;
  };
  /** A task bound to a fresh sandbox address (127.0.1.x), as the transparent listener sees it. */
  const sandboxTask = async () => {
    const task = await h.newTask(READS);
    const sourceAddress = `127.0.1.${++sandboxes}`;
    await h.t.adminDb().sandbox.create({ data: { taskId: task.taskId, name: `sandbox-${sandboxes}`, sourceAddress } });
    await h.sync();
    return { ...task, sourceAddress };
  };
  /** Pulls a kill switch and asserts the connection closes within a second of the commit. */
  const closesWithinASecond = async (socket: net.Socket | tls.TLSSocket, pull: () => Promise<unknown>) => {
    const pulledAt = performance.now();
    const closed = closedAfter(socket, pulledAt, 5000);
    await pull();
    expect(await closed).toBeLessThan(1000);
  };

  it("an open keep-alive connection to the explicit proxy is closed when its task is ended", async () => {
    const { token, taskId } = await h.newTask(READS);
    const socket = await connect(h.proxyPort);
    const first = await requestOn(socket, plainGet(`Proxy-Authorization: Bearer ${token}\r\n`));
    expect(statuses(first)).toEqual([200]);
    const before = plain.hits.length;
    await closesWithinASecond(socket, () => endTask(h.t.db, h.admin, taskId));
    expect(socket.destroyed).toBe(true);
    expect(plain.hits.length).toBe(before);
  });

  // A request still being decided keeps its connection for the grace period (2 s), so that its
  // refusal can be sent. That window must not let it through: the body finishes arriving after
  // the switch, the pipeline runs to its end, and still nothing reaches the upstream.
  it("a request whose body is still arriving when its task is ended is not forwarded when the body completes in the grace period", async () => {
    const { token, taskId } = await h.newTask(READS);
    const socket = await connect(h.proxyPort);
    let answer = "";
    socket.on("data", (c: Buffer) => (answer += c.toString("latin1")));
    socket.write(`GET http://plain.test:${plain.port}/items HTTP/1.1\r\nHost: plain.test:${plain.port}\r\nProxy-Authorization: Bearer ${token}\r\nContent-Length: 10\r\n\r\nhalf-`);
    await new Promise((r) => setTimeout(r, 200)); // authenticated, reading the body
    const before = plain.hits.length;
    const pulledAt = performance.now();
    const closed = closedAfter(socket, pulledAt, 6000);
    await endTask(h.t.db, h.admin, taskId);
    await h.sync(); // the kill switch has swept: the connection is closing, its request busy
    socket.write("done!");
    expect(await closed).toBeLessThan(3000);
    expect(plain.hits.length).toBe(before);
    // The agent got its refusal before the close (what the grace period is for), never the upstream's answer.
    expect(statuses(answer)).toHaveLength(1);
    expect(statuses(answer)[0]).toBeGreaterThanOrEqual(400);
  });

  it("a request whose agent is suspended after its authority was last confirmed, before it is forwarded, gets its refusal and reaches no upstream", async () => {
    const { token, agentId, taskId } = await h.newTask(READS);
    const pipeline = h.proxy.parts.pipeline;
    const original = pipeline.recordDecision;
    // The kill switch lands in the instant between the last authority check and forwarding.
    pipeline.recordDecision = async (...args: Parameters<typeof original>) => {
      const plan = await original.apply(pipeline, args);
      pipeline.recordDecision = original;
      await setAgentSuspended(h.t.db, h.admin, agentId, true);
      await h.sync(); // swept: the connection is closing and its request is still being decided
      return plan;
    };
    const before = plain.hits.length;
    try {
      const res = await viaProxy(h.proxyPort, `http://plain.test:${plain.port}/items`, { token });
      expect(res.status).toBe(407);
      expect(res.json).toMatchObject({ error: "token_agent_suspended" });
      // Said in words with the next step, as a new request of the suspended agent is told.
      expect((res.json as { reason: string }).reason).toBe(
        "task token refused: task token's agent is suspended; an admin must reactivate the agent, then create a new task (its tasks were revoked) (while the request was being decided; nothing was forwarded)",
      );
    } finally {
      pipeline.recordDecision = original;
    }
    expect(plain.hits.length).toBe(before);
    // The decision was recorded as allowed; its completion says it was never sent, and why.
    const failure = async () => {
      const rows = await h.t.db.auditEvent.findMany({ where: { taskId, type: { in: ["proxy.decision", "proxy.completed"] } } });
      return rows.map((r) => {
        const data = r.data as { failure?: string; completion?: { failure?: string } };
        return r.type === "proxy.completed" ? data.failure : data.completion?.failure;
      }).filter(Boolean);
    };
    await expect.poll(failure, { timeout: 5000 }).toEqual(["token_agent_suspended"]);
  });

  it("an intercepted CONNECT tunnel is closed when its agent is suspended", async () => {
    const { token, agentId } = await h.newTask(READS);
    const tunnel = await connectTunnel(h.proxyPort, `${GITHUB}:${github.port}`, { "proxy-authorization": `Bearer ${token}` });
    expect(tunnel.status).toBe(200);
    const secure = await tlsOver(tunnel.socket, GITHUB, caPem);
    const first = await requestOn(secure, `GET /repos/acme/app/issues HTTP/1.1\r\nHost: ${GITHUB}:${github.port}\r\n\r\n`);
    expect(statuses(first)).toEqual([200]);
    const before = github.hits.length;
    await closesWithinASecond(secure, () => setAgentSuspended(h.t.db, h.admin, agentId, true));
    expect(tunnel.socket.destroyed).toBe(true);
    expect(github.hits.length).toBe(before);
  });

  it("a passthrough tunnel is closed when its token is revoked", async () => {
    const { token, taskId } = await h.newTask(READS);
    const tunnel = await connectTunnel(h.proxyPort, `tunnel.test:${opaque.port}`, { "proxy-authorization": `Bearer ${token}` });
    expect(tunnel.status).toBe(200);
    const secure = await tlsOver(tunnel.socket, "tunnel.test", upstreamCaPem);
    const first = await requestOn(secure, `GET /anything HTTP/1.1\r\nHost: tunnel.test\r\n\r\n`);
    expect(statuses(first)).toEqual([200]);
    const before = opaque.hits.length;
    await closesWithinASecond(secure, async () => revokeTaskToken(h.t.db, h.admin, await jtiOf(taskId)));
    expect(opaque.hits.length).toBe(before);
  });

  it("a passthrough tunnel is closed when its task is ended", async () => {
    const { token, taskId } = await h.newTask(READS);
    const tunnel = await connectTunnel(h.proxyPort, `tunnel.test:${opaque.port}`, { "proxy-authorization": `Bearer ${token}` });
    const secure = await tlsOver(tunnel.socket, "tunnel.test", upstreamCaPem);
    await closesWithinASecond(secure, () => endTask(h.t.db, h.admin, taskId));
  });

  it("a sandbox's open transparent connections (plain and TLS) are closed when its task is ended", async () => {
    const { taskId, sourceAddress } = await sandboxTask();
    const plainSocket = await connect(h.transparentHttpPort, sourceAddress);
    expect(statuses(await requestOn(plainSocket, `GET /items HTTP/1.1\r\nHost: plain.test:${plain.port}\r\n\r\n`))).toEqual([200]);
    const secure = tls.connect({ socket: await connect(h.transparentTlsPort, sourceAddress), servername: GITHUB, ca: caPem });
    await new Promise((r, j) => secure.once("secureConnect", r).once("error", j));
    expect(statuses(await requestOn(secure, `GET /repos/acme/app HTTP/1.1\r\nHost: ${GITHUB}:${github.port}\r\n\r\n`))).toEqual([200]);
    const before = plain.hits.length + github.hits.length;
    const pulledAt = performance.now();
    const closed = Promise.all([closedAfter(plainSocket, pulledAt), closedAfter(secure, pulledAt)]);
    await endTask(h.t.db, h.admin, taskId);
    for (const ms of await closed) expect(ms).toBeLessThan(1000);
    expect(plain.hits.length + github.hits.length).toBe(before);
  });

  it("a sandbox's task is refused as soon as it expires, before any new snapshot", async () => {
    const { taskId, sourceAddress } = await sandboxTask();
    const expiresAt = Date.now() + 1500;
    await h.t.db.task.update({ where: { id: taskId }, data: { expiresAt: new Date(expiresAt) } });
    await h.sync();
    const get = `GET /items HTTP/1.1\r\nHost: plain.test:${plain.port}\r\nConnection: close\r\n\r\n`;
    expect(statuses(await requestOn(await connect(h.transparentHttpPort, sourceAddress), get))).toEqual([200]);
    const socket = await connect(h.transparentHttpPort, sourceAddress);
    const before = plain.hits.length;
    await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - Date.now())));
    const out = await requestOn(socket, get).catch(() => "");
    // Either answered with the refusal or closed at the expiry; never forwarded.
    if (out) expect(statuses(out)).toEqual([407]);
    const fresh = await requestOn(await connect(h.transparentHttpPort, sourceAddress), get);
    expect(statuses(fresh)).toEqual([407]);
    expect(plain.hits.length).toBe(before);
  });

  it("a token-authenticated task that expired between snapshots is refused", async () => {
    const { token, taskId } = await h.newTask(READS);
    const expiresAt = Date.now() + 1500;
    await h.t.db.task.update({ where: { id: taskId }, data: { expiresAt: new Date(expiresAt) } });
    await h.sync();
    expect((await viaProxy(h.proxyPort, `http://plain.test:${plain.port}/items`, { token })).status).toBe(200);
    const before = plain.hits.length;
    await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - Date.now()) + 5));
    const res = await viaProxy(h.proxyPort, `http://plain.test:${plain.port}/items`, { token });
    expect(res.status).toBe(407);
    expect(String(res.json?.error)).toMatch(/^token_task_(expired|revoked)$/);
    expect(plain.hits.length).toBe(before);
  });

  it("a connection of a task that is still active stays open (the switches do not misfire)", async () => {
    const { token } = await h.newTask(READS);
    const { taskId: other } = await h.newTask(READS);
    const socket = await connect(h.proxyPort);
    expect(statuses(await requestOn(socket, plainGet(`Proxy-Authorization: Bearer ${token}\r\n`)))).toEqual([200]);
    await endTask(h.t.db, h.admin, other);
    await h.sync();
    expect(statuses(await requestOn(socket, plainGet(`Proxy-Authorization: Bearer ${token}\r\n`)))).toEqual([200]);
    socket.destroy();
  });
});
