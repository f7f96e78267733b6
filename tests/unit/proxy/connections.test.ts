import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConnectionRegistry, type ConnectionOwner } from "@/proxy-worker/proxy/connections";

/** Real loopback sockets: what the registry closes is what a client sees closed. */
describe("ConnectionRegistry", () => {
  let server: net.Server;
  let port: number;
  const accepted: net.Socket[] = [];

  beforeAll(async () => {
    server = net.createServer((s) => accepted.push(s));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    port = (server.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    for (const s of accepted) s.destroy();
    await new Promise((r) => server.close(r));
  });

  /** A connected pair: the server's side (what the worker holds) and the client's. */
  const pair = async () => {
    const client = net.connect({ host: "127.0.0.1", port });
    await new Promise((r) => client.once("connect", r));
    while (accepted.length === 0 || accepted.at(-1)!.remotePort !== client.localPort) await new Promise((r) => setTimeout(r, 1));
    return { server: accepted.at(-1)!, client };
  };
  const closed = (s: net.Socket) => new Promise<boolean>((r) => (s.closed ? r(true) : s.once("close", () => r(true))));
  const owner = (taskId: string, agentId = "agent-1", jti: string | null = null): ConnectionOwner => ({ taskId, agentId, jti });

  it("closes by task, by agent and by jti, and only what matches", async () => {
    const registry = new ConnectionRegistry();
    const a = await pair();
    const b = await pair();
    const c = await pair();
    registry.register(a.server, owner("task-a", "agent-1", "jti-a"));
    registry.register(b.server, owner("task-b", "agent-2", "jti-b"));
    registry.register(c.server, owner("task-c", "agent-3", null));
    expect(registry.size).toBe(3);
    expect(registry.closeTask("task-a")).toBe(1);
    expect(await closed(a.client)).toBe(true);
    expect(b.server.destroyed || c.server.destroyed).toBe(false);
    expect(registry.closeJti("jti-b")).toBe(1);
    expect(registry.closeAgent("agent-3")).toBe(1);
    await Promise.all([closed(b.client), closed(c.client)]);
    await new Promise((r) => setImmediate(r));
    expect(registry.size).toBe(0);
    expect(registry.closeTask("task-a")).toBe(0);
  });

  it("a keep-alive connection that carried requests of two tasks closes when either is revoked", async () => {
    const registry = new ConnectionRegistry();
    const a = await pair();
    registry.register(a.server, owner("task-1"));
    registry.register(a.server, owner("task-2"));
    expect(registry.closeWhere((o) => (o.taskId === "task-2" ? "task_revoked" : null))).toBe(1);
    expect(await closed(a.client)).toBe(true);
  });

  it("layered sockets (TLS over a tunnel, a tunnel's upstream side) close together", async () => {
    const registry = new ConnectionRegistry();
    const tunnel = await pair();
    const upstream = await pair();
    registry.register(tunnel.server, owner("task-l"));
    registry.layer(upstream.server, tunnel.server);
    expect(registry.size).toBe(1);
    registry.closeTask("task-l");
    expect(await Promise.all([closed(tunnel.client), closed(upstream.client)])).toEqual([true, true]);
  });

  it("a request being decided is answered before its connection closes, within the grace period at most", async () => {
    const registry = new ConnectionRegistry({ graceMs: 200 });
    const a = await pair();
    const b = await pair();
    const doneA = registry.busy(a.server);
    registry.register(a.server, owner("task-g"));
    registry.busy(b.server);
    registry.register(b.server, owner("task-g"));
    registry.closeTask("task-g");
    expect(a.server.destroyed).toBe(false);
    const received = new Promise<string>((r) => a.client.once("data", (d: Buffer) => r(d.toString())));
    a.server.write("HTTP/1.1 403 Forbidden\r\n\r\n");
    doneA();
    expect(await received).toContain("403");
    expect(await closed(a.client)).toBe(true);
    // Never released: cut after the grace period.
    const started = performance.now();
    await closed(b.client);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it("says why a connection with a request being decided is closing, so the request is refused instead of sent", async () => {
    const registry = new ConnectionRegistry({ graceMs: 5000 });
    const a = await pair();
    const b = await pair();
    const c = await pair();
    const doneA = registry.busy(a.server);
    registry.register(a.server, owner("task-w", "agent-w"));
    const doneB = registry.busy(b.server);
    registry.register(b.server, owner("task-x", "agent-x", "jti-x"));
    const doneC = registry.busy(c.server);
    registry.register(c.server, owner("task-y", "agent-y"));
    expect(registry.closedBecause(a.server)).toBeNull();
    registry.closeAgent("agent-w");
    registry.closeWhere((o) => (o.jti === "jti-x" ? "jti_revoked" : null));
    expect(registry.closedBecause(a.server)).toBe("agent_suspended");
    expect(registry.closedBecause(b.server)).toBe("jti_revoked");
    expect(registry.closedBecause(c.server)).toBeNull();
    expect(a.server.destroyed || b.server.destroyed).toBe(false);
    doneA();
    doneB();
    await Promise.all([closed(a.client), closed(b.client)]);
    expect(c.server.destroyed).toBe(false);
    doneC();
    c.client.destroy();
  });

  it("registering an owner that is already revoked closes the connection at once", async () => {
    const registry = new ConnectionRegistry({ revoked: (o) => (o.taskId === "gone" ? "task_revoked" : null) });
    const a = await pair();
    const b = await pair();
    registry.register(a.server, owner("gone"));
    registry.register(b.server, owner("alive"));
    expect(await closed(a.client)).toBe(true);
    expect(b.server.destroyed).toBe(false);
    b.client.destroy();
  });
});
