import { randomUUID } from "node:crypto";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { viaProxy } from "../../support/proxy-client";
import { exchange } from "../../support/tunnel-client";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

/**
 * MCP sessions belong to the task that opened them (proxy-worker/proxy/mcp-sessions.ts). Every
 * task reaches the MCP server as the same client (the proxy injects one credential), so the
 * server cannot tell one task's session from another's: the proxy must. The upstream below is a
 * small MCP server that hands out a session id on `initialize`, ends it on DELETE and counts what
 * reaches it.
 */
describe("MCP sessions through the proxy", () => {
  let h: ProxyHarness;
  let mcp: Upstream;
  const live = new Set<string>();
  const policy = "rules:\n  - service: team-mcp\n    effects: [read, write]\n";

  beforeAll(async () => {
    mcp = await startHttpUpstream((hit, res) => {
      const sent = hit.headers["mcp-session-id"];
      if (hit.method === "DELETE") {
        const known = typeof sent === "string" && live.delete(sent);
        res.writeHead(known ? 204 : 404).end();
        return;
      }
      const message = JSON.parse(hit.body || "{}") as { id?: number; method?: string };
      if (message.method === "initialize") {
        const id = randomUUID();
        live.add(id);
        res.writeHead(200, { "content-type": "application/json", "mcp-session-id": id });
        res.end(JSON.stringify({ jsonrpc: "2.0", id: message.id, result: { protocolVersion: "2025-06-18", capabilities: {}, serverInfo: { name: "t", version: "1" } } }));
        return;
      }
      if (typeof sent !== "string" || !live.has(sent)) {
        res.writeHead(404, { "content-type": "application/json" }).end("{}");
        return;
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ jsonrpc: "2.0", id: message.id, result: { tools: [] } }));
    });
    h = await startProxyHarness();
    await h.addService({ id: "team-mcp", hosts: ["mcp.test"], ports: [mcp.port], scheme: "http", protocol: "mcp", proxy: { internalAddresses: ["127.0.0.1/32"] }, mcp: { tools: [{ name: "list_notes", effect: "read" }] } });
  });
  afterAll(async () => {
    await h?.close();
    await mcp?.close();
  });

  const url = () => `http://mcp.test:${mcp.port}/mcp`;
  const call = (token: string, body: unknown, session?: string, method = "POST") =>
    viaProxy(h.proxyPort, url(), {
      token,
      method,
      headers: { "content-type": "application/json", ...(session ? { "mcp-session-id": session } : {}) },
      body: method === "DELETE" ? undefined : JSON.stringify(body),
    });
  const initialize = async (token: string): Promise<string> => {
    const res = await call(token, { jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "agent", version: "1" } } });
    expect(res.status).toBe(200);
    const id = res.headers["mcp-session-id"];
    expect(typeof id).toBe("string");
    return id as string;
  };
  const list = { jsonrpc: "2.0", id: 2, method: "tools/list" };

  it("a task uses the session it opened, and ends it", async () => {
    const { token } = await h.newTask(policy);
    const session = await initialize(token);
    expect((await call(token, list, session)).status).toBe(200);
    expect((await call(token, null, session, "DELETE")).status).toBe(204);
    expect(live.has(session)).toBe(false);
  });

  it("another task can neither act in a task's session nor end it, even with the same agent", async () => {
    const owner = await h.newTask(policy);
    const session = await initialize(owner.token);
    const other = await h.newTask(policy, { agentId: owner.agentId });
    const stranger = await h.newTask(policy);
    const before = mcp.hits.length;
    for (const { token } of [other, stranger]) {
      const used = await call(token, list, session);
      expect([used.status, used.json?.error]).toEqual([404, "mcp_session_unknown"]);
      expect(String(used.json?.reason)).toMatch(/another task/);
      const ended = await call(token, null, session, "DELETE");
      expect([ended.status, ended.json?.error]).toEqual([404, "mcp_session_unknown"]);
    }
    expect(mcp.hits.length).toBe(before);
    expect(live.has(session)).toBe(true);
    // The owner's session is untouched and still its own.
    expect((await call(owner.token, list, session)).status).toBe(200);
  });

  it("a session id the proxy never handed to the task is refused before it reaches the server, and the refusal is audited", async () => {
    const { token, taskId } = await h.newTask(policy);
    const made = randomUUID();
    live.add(made); // a session the server knows but that was not opened through this task
    const before = mcp.hits.length;
    const res = await call(token, list, made);
    expect([res.status, res.json?.error]).toEqual([404, "mcp_session_unknown"]);
    expect(String(res.json?.reason)).toMatch(/initialize/);
    expect(mcp.hits.length).toBe(before);
    const events = await h.t.db.auditEvent.findMany({ where: { taskId, type: "proxy.rejected" } });
    expect(events.map((e) => (e.data as { mcpSession?: string }).mcpSession)).toContain("unknown");
    // Two Mcp-Session-Id headers are ambiguous: refused as such.
    const session = await initialize(token);
    const body = JSON.stringify(list);
    const raw = `POST ${url()} HTTP/1.1\r\nHost: mcp.test:${mcp.port}\r\nProxy-Authorization: Bearer ${token}\r\nContent-Type: application/json\r\nMcp-Session-Id: ${session}\r\nMcp-Session-Id: ${made}\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    const twice = await exchange(net.connect(h.proxyPort, "127.0.0.1"), raw);
    expect(twice).toMatch(/^HTTP\/1\.1 400 /);
    expect(twice).toContain("duplicate_header");
    expect(mcp.hits.length).toBe(before + 1);
  });

  it("a session the server ended is forgotten: its id no longer reaches the server", async () => {
    const { token } = await h.newTask(policy);
    const session = await initialize(token);
    live.delete(session); // the server ends it on its own
    expect((await call(token, list, session)).status).toBe(404);
    const before = mcp.hits.length;
    const again = await call(token, list, session);
    expect([again.status, again.json?.error]).toEqual([404, "mcp_session_unknown"]);
    expect(mcp.hits.length).toBe(before);
  });
});
