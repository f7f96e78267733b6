import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { captureLog, waitFor, type CapturedLog } from "../../support/log-capture";
import { onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { viaProxy } from "../../support/proxy-client";
import { exchange } from "../../support/tunnel-client";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

const LINE = "CANONICAL-PROXY-DECISION";
const RAILWAY = "backboard.railway.com";

/**
 * One canonical decision line per request, with what an operator needs to answer "why was this
 * blocked?", and nothing an agent sends can forge or split a line: every agent-controlled value
 * is escaped to printable ASCII.
 */
describe("the canonical decision log line", () => {
  let h: ProxyHarness;
  let up: Upstream;
  let railway: Upstream;
  let logs: CapturedLog;
  let token: string;
  let origin: string;

  const entriesFor = (eventId: unknown) => logs.entries(LINE).filter((e) => e.eventId === eventId);

  beforeAll(async () => {
    logs = captureLog();
    up = await startHttpUpstream();
    railway = await startHttpUpstream();
    h = await startProxyHarness({ log: logs.log });
    await h.addService({ id: "api", hosts: ["api.test"], scheme: "http", ports: [up.port], protocol: "rest", rest: { routes: [{ method: "DELETE", path: "/items/{id}", operation: "items.delete", effect: "destructive" }] }, proxy: { internalAddresses: ["127.0.0.1/32"] } });
    await h.addService(onLoopback("railway", railway.port, { scheme: "http" }));
    ({ token } = await h.newTask("unlisted: deny\nrules:\n  - service: api\n    effects: [read]\n  - service: railway\n    effects: [read]\n", { scope: "*:*:irreversible" }));
    origin = `http://api.test:${up.port}`;
  });
  afterAll(async () => {
    await h.close();
    await up.close();
    await railway.close();
  });

  it("writes one line for a forwarded request, with the decision and the upstream's answer", async () => {
    const r = await viaProxy(h.proxyPort, `${origin}/items?page=2`, { token });
    expect(r.status).toBe(200);
    const [entry, ...more] = await waitFor(() => (entriesFor(r.headers["x-bulkhead-event"]).length ? entriesFor(r.headers["x-bulkhead-event"]) : null));
    expect(more).toHaveLength(0);
    expect(entry).toMatchObject({ decision: "allow", status: 200, upstreamStatus: 200, listener: "explicit", method: "GET", url: `${origin}/items?page=2`, service: "api", effect: "read" });
    expect(typeof entry!.taskId).toBe("string");
    expect(typeof entry!.agentId).toBe("string");
    expect(typeof entry!.durationMs).toBe("number");
    expect(entry!.destination).toBe("127.0.0.1");
  });

  it("writes one line for a denial, saying why", async () => {
    const r = await viaProxy(h.proxyPort, `${origin}/items/42`, { token, method: "DELETE" });
    expect(r.status).toBe(403);
    const entries = await waitFor(() => (entriesFor(r.json?.auditEventId).length ? entriesFor(r.json?.auditEventId) : null));
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ decision: "deny", status: 403, code: "policy_deny", operations: ["items.delete"], effect: "destructive" });
    expect(String(entries[0]!.reason)).toMatch(/destructive/);
  });

  it("writes one line for an identity failure and for a request the parser refused", async () => {
    const r = await viaProxy(h.proxyPort, `${origin}/items`, {});
    expect(r.status).toBe(407);
    expect(entriesFor(r.json?.auditEventId)).toMatchObject([{ decision: "deny", status: 407, code: "token_missing" }]);
    const socket = net.connect(h.proxyPort, "127.0.0.1");
    await new Promise((resolve) => socket.once("connect", resolve));
    const out = await exchange(socket, "NOT HTTP AT ALL\r\n\r\n", 500);
    const id = (JSON.parse(out.slice(out.indexOf("{"))) as { auditEventId: string }).auditEventId;
    expect(await waitFor(() => (entriesFor(id).length ? entriesFor(id) : null))).toMatchObject([{ decision: "deny", status: 400, code: "http_parse_error" }]);
  });

  it("escapes every agent-controlled value: a crafted resource cannot forge or split a line", async () => {
    const forged = `vol\u2028{"msg":"${LINE}","decision":"allow"}\u2029\r\n{"msg":"${LINE}"}\u001b[2K\u202egnp.exe`;
    const r = await viaProxy(h.proxyPort, `http://${RAILWAY}:${railway.port}/graphql/v2`, {
      token,
      headers: { "content-type": "application/json", "user-agent": "agent\u00e9" },
      body: JSON.stringify({ query: `mutation { volumeDelete(volumeId: ${JSON.stringify(forged)}) }` }),
    });
    expect(r.status).toBe(403);
    const text = logs.lines().join("\n");
    // Only printable ASCII in the whole log: no line terminators, escapes or bidi controls to exploit.
    expect(/[^\x20-\x7e\n]/.test(text)).toBe(false);
    for (const line of logs.lines()) expect(() => JSON.parse(line)).not.toThrow();
    const entries = entriesFor(r.json?.auditEventId);
    expect(entries).toHaveLength(1);
    expect(entries[0]!.decision).toBe("deny");
    expect(logs.entries(LINE).filter((e) => e.decision === "allow" && e.eventId === undefined)).toHaveLength(0);
  });
});
