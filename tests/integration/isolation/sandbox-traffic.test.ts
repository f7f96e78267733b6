import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { endTask } from "@/lib/tasks/tasks";
import { exchangeOn, GATEWAY4, PLAIN, PLAIN_SECRET, RAILWAY, RAILWAY_SECRET, RAWDB, startStack, waitFor, type Stack } from "../../support/isolation/stack";

/**
 * Layer 3 through real sandboxes: an agent with no proxy settings, in a network namespace whose
 * only way out is Bulkhead, reaches allowed upstreams with credentials injected and is judged
 * exactly like the explicit path; a name that disagrees with the address it was dialled at is
 * refused; ending the task closes what is open.
 */
const POLICY = `unlisted: deny
rules:
  - service: plainapi
    effects: [read]
  - service: railway
    effects: [read]
  - service: rawdb
    operations: [tunnel]
    effects: [irreversible]
    waive_approval: true
`;

// What an agent would run: Node's fetch ignores proxy variables anyway; here there are none.
const AGENT = `
const out = {};
const grab = async (name, url, init) => {
  try { const r = await fetch(url, init); out[name] = { status: r.status, body: await r.text() }; }
  catch (e) { out[name] = { error: String(e.cause?.code ?? e.message) }; }
};
const gql = (query) => ({ method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query }) });
await grab("plain", "http://plain.example.test/items");
await grab("me", "https://backboard.railway.com/graphql/v2", gql("query { me }"));
await grab("volumeDelete", "https://backboard.railway.com/graphql/v2", gql('mutation { volumeDelete(volumeId: "vol_prod") }'));
out.env = Object.keys(process.env).filter((k) => /proxy/i.test(k));
out.uid = process.getuid();
console.log(JSON.stringify(out));
`;

describe("sandboxes: traffic through the only way out", () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack();
    await s.startWorker();
  }, 600_000);
  afterAll(async () => {
    await s?.close();
  });

  it.sequential("plain HTTP and HTTPS with no proxy settings reach allowed upstreams with the credential injected; volumeDelete is refused and never reaches Railway", async () => {
    // An unrestricted scope, so that the policy (layer 2) is what refuses here.
    const { taskId } = await s.newTask(POLICY, "30m", "*:*:irreversible");
    const run = await s.topo.bulkhead(["sandbox", "run", "--task", taskId, "--", process.execPath, "--input-type=module", "-e", AGENT], s.env());
    expect(run.stderr, run.stderr + run.stdout).toContain("torn down");
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout.trim().split("\n").pop() ?? "{}");
    expect(out.uid).toBe(65534);
    expect(out.env).toEqual([]);
    expect(out.plain?.status, `${JSON.stringify(out)}\n${run.stderr}\n${s.workerLog().slice(-4000)}`).toBe(200);
    expect(s.plain.hits.at(-1)?.headers["x-api-key"]).toBe(PLAIN_SECRET);
    expect(out.me, `${JSON.stringify(out)}\n${s.workerLog().slice(-4000)}`).toMatchObject({ status: 200 });
    expect(JSON.parse(out.me.body)).toEqual({ data: { me: "agent" } });
    expect(s.railway.hits.at(-1)?.headers.authorization).toBe(`Bearer ${RAILWAY_SECRET}`);
    expect(out.volumeDelete.status).toBe(403);
    expect(JSON.parse(out.volumeDelete.body).error).toBe("policy_deny");
    expect(s.railway.executed.filter((e) => e.startsWith("volumeDelete"))).toEqual([]);
    // Judged and audited like the explicit path, as the transparent listener, bound to the task.
    // The worker ships its audit log to PostgreSQL after answering: wait for the rows, not a moment.
    const decisions = () => s.t.db.auditEvent.findMany({ where: { taskId, type: "proxy.decision" }, orderBy: { id: "asc" } });
    await expect.poll(async () => (await decisions()).filter((e) => e.outcome === "allow").length, { timeout: 10_000 }).toBe(2);
    await expect.poll(async () => (await decisions()).some((e) => e.outcome === "deny"), { timeout: 10_000 }).toBe(true);
    const events = await decisions();
    expect(events.filter((e) => e.outcome === "allow").length).toBe(2);
    const denied = events.find((e) => e.outcome === "deny");
    expect((denied?.data as { listener?: string }).listener).toBe("transparent");
    const lifecycle = await s.t.db.auditEvent.findMany({ where: { taskId, type: { startsWith: "sandbox." } }, select: { type: true } });
    expect(lifecycle.map((e) => e.type)).toEqual(expect.arrayContaining(["sandbox.started", "sandbox.removed"]));
    const row = await s.t.db.sandbox.findFirst({ where: { taskId } });
    expect(row?.removedAt).not.toBeNull();
    expect(row?.sourceAddress).toBeNull();
  }, 600_000);

  // Inside intercepted TLS the request's socket is the TLS layer, with no address of its own: the
  // check binding a token to the sandbox it is presented from found no sandbox, and another task's
  // token was honoured, its request forwarded as that task.
  it.sequential("another task's token presented inside the sandbox is refused over HTTPS as over HTTP, and nothing reaches the upstream", async () => {
    const { taskId } = await s.newTask(POLICY, "30m", "*:*:irreversible");
    const other = await s.newTask(POLICY, "30m", "*:*:irreversible");
    const token = await s.mintToken(other.taskId);
    // node:http and node:https: fetch drops Proxy-* headers (forbidden by the Fetch standard).
    const agent = `
import http from "node:http";
import https from "node:https";
const out = {};
const send = (name, mod, url) => new Promise((resolve) => {
  const body = JSON.stringify({ query: "query { me }" });
  const req = mod.request(url, { method: "POST", headers: { "proxy-authorization": "Bearer " + process.argv[1], "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (res) => {
    let text = ""; res.on("data", (c) => (text += c)); res.on("end", () => { out[name] = { status: res.statusCode, body: text }; resolve(); });
  });
  req.on("error", (e) => { out[name] = { error: String(e.code ?? e.message) }; resolve(); });
  req.end(body);
});
await send("http", http, "http://plain.example.test/items");
await send("https", https, "https://backboard.railway.com/graphql/v2");
console.log(JSON.stringify(out));
`;
    const before = s.railway.hits.length;
    const run = await s.topo.bulkhead(["sandbox", "run", "--task", taskId, "--", process.execPath, "--input-type=module", "-e", agent, token], s.env());
    const out = JSON.parse(run.stdout.trim().split("\n").pop() ?? "{}");
    expect(out.https?.status, `${JSON.stringify(out)}\n${run.stderr}`).toBe(407);
    expect(JSON.parse(out.https.body).error).toBe("token_sandbox_mismatch");
    expect(out.http?.status).toBe(407);
    expect(s.railway.hits.length).toBe(before);
  }, 600_000);

  it.sequential("a name whose address was swapped (SNI or Host that disagrees with where the connection went) is refused, and nothing reaches the upstream", async () => {
    const { taskId } = await s.newTask(POLICY);
    const script = `
import dns from "node:dns/promises"; import net from "node:net"; import tls from "node:tls";
const [railway] = await dns.resolve4("backboard.railway.com");
const [plain] = await dns.resolve4("plain.example.test");
const settle = (fn) => new Promise((res) => { const t = setTimeout(() => res("timeout"), 4000); fn((v) => { clearTimeout(t); res(v); }); });
const viaTls = await settle((done) => { const s = tls.connect({ host: plain, port: 443, servername: "backboard.railway.com", rejectUnauthorized: false }); s.on("secureConnect", () => { done("connected"); s.destroy(); }); s.on("error", (e) => done("error")); s.on("close", () => done("closed")); });
const http = (address, host) => settle((done) => { let d = ""; const s = net.connect({ host: address, port: 80 }, () => s.write("GET /items HTTP/1.1\\r\\nHost: " + host + "\\r\\nConnection: close\\r\\n\\r\\n")); s.on("data", (c) => (d += c)); s.on("close", () => done(d)); s.on("error", () => done(d)); });
const swapped = await http(railway, "plain.example.test");
const otherName = await http(plain, "backboard.railway.com");
const control = await http(plain, "plain.example.test");
console.log(JSON.stringify({ railway, plain, viaTls, swapped, otherName, control }));
`;
    const plainBefore = s.plain.hits.length;
    const railwayBefore = s.railway.hits.length;
    const run = await s.topo.bulkhead(["sandbox", "run", "--task", taskId, "--", process.execPath, "--input-type=module", "-e", script], s.env());
    expect(run.code, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout.trim().split("\n").pop() ?? "{}");
    expect(out.railway).toBe(RAILWAY);
    expect(out.plain).toBe(PLAIN);
    // The sandbox resolved both names, so it may dial plain.example.test at PLAIN, and only there.
    expect(out.viaTls).not.toBe("connected");
    expect(out.swapped, `${JSON.stringify(out)}\n${run.stderr}\n${s.workerLog().slice(-4000)}`).toMatch(/^HTTP\/1\.1 403/);
    expect(out.swapped).toContain("destination_mismatch");
    expect(out.otherName).toContain("destination_mismatch");
    expect(out.control).toMatch(/^HTTP\/1\.1 200/);
    expect(s.plain.hits.length).toBe(plainBefore + 1);
    expect(s.railway.hits.length).toBe(railwayBefore);
    const refusals = await s.t.db.auditEvent.findMany({ where: { taskId, type: "proxy.decision", outcome: "deny" } });
    expect(refusals.map((e) => (e.data as { code?: string }).code)).toEqual(expect.arrayContaining(["destination_mismatch"]));
    expect(refusals.length).toBeGreaterThanOrEqual(3);
  }, 600_000);

  // The launcher killed with SIGKILL (no handler runs): the command kept running, with its
  // network, as the task, until the next cleanup. It now dies with its launcher.
  it.sequential("a launcher killed with SIGKILL takes its command with it", async () => {
    const { taskId } = await s.newTask(POLICY);
    const marker = String(700_000 + Math.floor(Math.random() * 99_999));
    const launcher = s.topo.spawnBulkhead(["sandbox", "run", "--task", taskId, "--", "sleep", marker], s.env());
    await s.liveSandbox(taskId, launcher);
    const running = async () => (await import("../../support/isolation/topology").then((m) => m.sh("pgrep", ["-f", `^sleep ${marker}$`]))).stdout.trim() !== "";
    await waitFor("the command to run", async () => (await running()) || null, 15_000);
    launcher.kill("SIGKILL");
    await waitFor("the command to be gone", async () => !(await running()) || null, 10_000);
  }, 600_000);

  // Ctrl-C while the sandbox waited for the worker or ran its self-test left it behind (its
  // namespace, cgroup and live row) until the next cleanup.
  it.sequential("a launcher interrupted before its command starts tears the sandbox down", async () => {
    const { taskId } = await s.newTask(POLICY);
    const launcher = s.topo.spawnBulkhead(["sandbox", "run", "--task", taskId, "--verify", "--", "true"], s.env());
    const box = await s.liveSandbox(taskId, launcher);
    launcher.kill("SIGINT");
    const code = await new Promise<number>((r) => (launcher.exitCode !== null ? r(launcher.exitCode) : launcher.once("exit", (c) => r(c ?? 1))));
    expect(code, launcher.output.stderr).toBe(130);
    expect(launcher.output.stderr).toMatch(/torn down: the launcher received SIGINT before the command started|the self-test was stopped/);
    await waitFor("the sandbox row to be removed", async () => (await s.t.db.sandbox.findUnique({ where: { id: box.id } }))?.removedAt ?? null, 15_000);
    const netns = await import("../../support/isolation/topology").then((m) => m.sh("ip", ["netns", "list"]));
    expect(netns.stdout).not.toContain(box.name);
  }, 600_000);

  it.sequential("ending the task closes an open keep-alive connection and an open tunnel within a second, and tears the sandbox down", async () => {
    const { taskId } = await s.newTask(POLICY);
    const launcher = s.topo.spawnBulkhead(["sandbox", "run", "--task", taskId, "--", "sleep", "120"], s.env());
    const box = await s.liveSandbox(taskId, launcher);
    const inside = await s.topo.helper(box.name);
    // The agent side, from the sandbox's own address: a keep-alive HTTP connection...
    expect(await inside.resolve(GATEWAY4, "plain.example.test")).toEqual([PLAIN]);
    const keepAlive = await inside.connect(PLAIN, 80);
    const first = await exchangeOn(keepAlive, "GET /one HTTP/1.1\r\nHost: plain.example.test\r\n\r\n");
    expect(first).toMatch(/^HTTP\/1\.1 200/);
    // ...and a raw TCP tunnel to a passthrough service (one `tunnel` action).
    expect(await inside.resolve(GATEWAY4, "db.example.test")).toEqual([RAWDB]);
    const tunnel = await inside.connect(RAWDB, 5432);
    await waitFor("the tunnel to echo", async () => (await exchangeOn(tunnel, "ping", 1000)).includes("ping"), 10_000);
    const closed = (socket: import("node:net").Socket) => new Promise<number>((r) => (socket.destroyed ? r(Date.now()) : socket.once("close", () => r(Date.now()))));
    const keepAliveClosed = closed(keepAlive);
    const tunnelClosed = closed(tunnel);
    await endTask(s.t.db, s.admin, taskId, "test ends the task");
    // Measured from the commit: that is when the task ended.
    const endedAt = Date.now();
    const [a, b] = await Promise.all([keepAliveClosed, tunnelClosed]);
    expect(a - endedAt).toBeLessThan(1000);
    expect(b - endedAt).toBeLessThan(1000);
    const code = await new Promise<number>((r) => (launcher.exitCode !== null ? r(launcher.exitCode) : launcher.once("exit", (c) => r(c ?? 1))));
    expect(code).toBe(125);
    expect(launcher.output.stderr).toMatch(/torn down: the task is ended/);
    const row = await s.t.db.sandbox.findUnique({ where: { id: box.id } });
    expect(row?.removedAt).not.toBeNull();
    const netns = await import("../../support/isolation/topology").then((m) => m.sh("ip", ["netns", "list"]));
    expect(netns.stdout).not.toContain(box.name);
  }, 600_000);

  // The sandbox listener read the ClientHello and then waited for the rest of the handshake for
  // ever: a sandbox could keep any number of connections (file descriptors) open that way.
  it.sequential("a TLS client that sends its ClientHello and never finishes the handshake is closed after the head timeout, and audited", async () => {
    // A head timeout of 3 s instead of the default 20 s (min(BULKHEAD_CLIENT_TIMEOUT_SECONDS, 20)),
    // so the test does not wait 20 s; the next test starts a worker of its own again.
    await s.stopWorker();
    await s.startWorker({ BULKHEAD_CLIENT_TIMEOUT_SECONDS: "3" });
    const { taskId } = await s.newTask(POLICY);
    const launcher = s.topo.spawnBulkhead(["sandbox", "run", "--task", taskId, "--", "sleep", "120"], s.env());
    const box = await s.liveSandbox(taskId, launcher);
    const inside = await s.topo.helper(box.name);
    expect(await inside.resolve(GATEWAY4, "plain.example.test")).toEqual([PLAIN]);
    // A real ClientHello for the name, taken from a client whose later flights go nowhere.
    const { Duplex } = await import("node:stream");
    const tls = await import("node:tls");
    const hello = await new Promise<Buffer>((resolve) => {
      const sink = new Duplex({ read() {}, write(chunk: Buffer, _e, done) { resolve(chunk); done(); } });
      tls.connect({ socket: sink, servername: "plain.example.test", rejectUnauthorized: false }).on("error", () => undefined);
    });
    const stalled = await inside.connect(PLAIN, 443);
    stalled.on("error", () => undefined);
    const since = Date.now();
    const closed = new Promise<number>((r) => stalled.once("close", () => r(Date.now() - since)));
    stalled.write(hello);
    const after = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 23_000))]);
    expect(after, "still open 23 s later").toBeGreaterThan(0);
    // Closed by the head timeout (3 s from the ClientHello), not before it and not long after it.
    expect(after).toBeGreaterThanOrEqual(2_900);
    expect(after).toBeLessThan(13_000);
    await waitFor("the handshake timeout to be audited", async () => {
      const events = await s.t.db.auditEvent.findMany({ where: { taskId, type: "proxy.decision", outcome: "deny" } });
      return events.some((e) => (e.data as { code?: string }).code === "tls_handshake_failed");
    }, 10_000);
    stalled.destroy();
    inside.close();
    await endTask(s.t.db, s.admin, taskId, "test ends the task");
    await new Promise((r) => (launcher.exitCode !== null ? r(null) : launcher.once("exit", r)));
  }, 600_000);

  // Documented for every sandbox connection, but only tunnels of the explicit listener had it: a
  // sandbox's busy keep-alive connection stayed open for ever.
  it.sequential("a busy sandbox connection is closed at its maximum lifetime", async () => {
    await s.stopWorker();
    await s.startWorker({ BULKHEAD_TUNNEL_MAX_LIFETIME_SECONDS: "3" });
    const { taskId } = await s.newTask(POLICY);
    const launcher = s.topo.spawnBulkhead(["sandbox", "run", "--task", taskId, "--", "sleep", "120"], s.env());
    const box = await s.liveSandbox(taskId, launcher);
    const inside = await s.topo.helper(box.name);
    expect(await inside.resolve(GATEWAY4, "plain.example.test")).toEqual([PLAIN]);
    const busy = await inside.connect(PLAIN, 80);
    busy.on("error", () => undefined);
    const since = Date.now();
    const closed = new Promise<number>((r) => busy.once("close", () => r(Date.now() - since)));
    let answers = 0;
    // The first request at once (a connection silent for the sniff window is judged as raw TCP).
    const ask = () => {
      if (!busy.destroyed) void exchangeOn(busy, "GET /busy HTTP/1.1\r\nHost: plain.example.test\r\n\r\n", 400).then((out) => void (/^HTTP\/1\.1 200/.test(out) && answers++));
    };
    ask();
    const timer = setInterval(ask, 500);
    const after = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 15_000))]);
    clearInterval(timer);
    expect(answers).toBeGreaterThan(1);
    expect(after, "still open 15 s later").toBeGreaterThan(2000);
    expect(after).toBeLessThan(6000);
    inside.close();
    await endTask(s.t.db, s.admin, taskId, "test ends the task");
    await new Promise((r) => (launcher.exitCode !== null ? r(null) : launcher.once("exit", r)));
  }, 600_000);
});
