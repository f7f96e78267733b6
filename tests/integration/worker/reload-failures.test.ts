import net from "node:net";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newKid } from "@/lib/identity/keys";
import { endTask } from "@/lib/tasks/tasks";
import { viaProxy } from "../../support/proxy-client";
import { startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { closedAfter, connectTunnel, exchange, statuses } from "../../support/tunnel-client";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

const READ_POLICY = "unlisted: deny\nrules:\n  - service: api\n    effects: [read]\n";

async function until(check: () => boolean, timeoutMs: number): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * A reload of the worker's enforcement state that fails (a query refused, a bad row) must not
 * lose a revocation: the real worker (in-process harness, real PostgreSQL, a real upstream on
 * loopback) is made to fail a reload, and a request of the ended task is sent afterwards.
 */
describe("a failed policy reload never loses a task end", () => {
  let h: ProxyHarness;
  let up: Upstream;
  let admin: pg.Client;
  let workerRole: string;

  beforeAll(async () => {
    up = await startHttpUpstream();
    h = await startProxyHarness();
    await h.addService({ id: "api", hosts: ["api.test"], scheme: "http", ports: [up.port], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    admin = new pg.Client({ connectionString: h.t.adminUrl });
    await admin.connect();
    workerRole = decodeURIComponent(new URL(h.t.workerUrl).username);
  });
  afterAll(async () => {
    await admin.query(`GRANT SELECT ON tasks TO "${workerRole}"`).catch(() => undefined);
    await admin.end();
    await h.close();
    await up.close();
  });

  const get = (token: string) => viaProxy(h.proxyPort, `http://api.test:${up.port}/items`, { token });

  it("an ended task whose row could not be read when its notification came is refused within about a second once the database answers", async () => {
    const { taskId, token } = await h.newTask(READ_POLICY);
    expect((await get(token)).status).toBe(200);

    // The worker hears `tasks:<id>` but cannot read the row (any transient failure of the
    // incremental read: a statement timeout, a connection cut, a privilege changed).
    await admin.query(`REVOKE SELECT ON tasks FROM "${workerRole}"`);
    const failedBefore = h.core.policy.status().loads;
    await endTask(h.t.db, h.admin, taskId);
    await until(() => h.core.policy.status().stale, 5_000);
    expect(h.core.policy.status().loads).toEqual(failedBefore);
    await admin.query(`GRANT SELECT ON tasks TO "${workerRole}"`);

    // Nothing else happens: no other notification, and the reconcile is a minute away (30 s in
    // production). The worker must retry on its own.
    await new Promise((r) => setTimeout(r, 1_500));
    const hitsBefore = up.hits.length;
    const after = await get(token);
    expect(after.status).toBe(407);
    expect(up.hits.length).toBe(hitsBefore);
    expect(h.core.policy.status().stale).toBe(false);
  });

  it("a listening connection that stops answering does not leave a task end unheard for a minute", async () => {
    const { taskId, token } = await h.newTask(READ_POLICY);
    expect((await get(token)).status).toBe(200);

    // The worker's LISTEN connection goes silent (its backend frozen here; a connection dropped
    // by a firewall or a NAT without a reset looks the same) while PostgreSQL itself answers.
    const dbName = new URL(h.t.adminUrl).pathname.slice(1);
    let pids: number[] = [];
    for (let i = 0; i < 50 && pids.length === 0; i++) {
      const rows = await admin.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND usename = $2 AND query = 'SELECT 1'", [dbName, workerRole]);
      pids = rows.rows.map((r) => r.pid);
      if (pids.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) process.kill(pid, "SIGSTOP");
    try {
      await until(() => h.core.policy.status().stale || !h.core.policy.status().databaseReachable, 5_000);
      await endTask(h.t.db, h.admin, taskId);
      await new Promise((r) => setTimeout(r, 2_000));
      const hitsBefore = up.hits.length;
      const after = await get(token);
      expect(after.status).toBe(407);
      expect(up.hits.length).toBe(hitsBefore);
      // The operator is told that the worker is not hearing changes.
      expect(h.core.policy.status().listening).toBe(false);
    } finally {
      for (const pid of pids) process.kill(pid, "SIGCONT");
    }
  });

  /** A plain HTTP request from a sandbox's address, through the transparent listener. */
  const fromSandbox = async (address: string) => {
    const socket = net.connect({ host: "127.0.0.1", port: h.transparentHttpPort, localAddress: address });
    await new Promise((r) => socket.once("connect", r));
    const raw = await exchange(socket, `GET /items HTTP/1.1\r\nHost: api.test:${up.port}\r\nConnection: close\r\n\r\n`);
    return { status: statuses(raw)[0], raw };
  };

  it("a signing-key row that is not a usable key is left out: loads go on, other tokens verify, a task end arrives", async () => {
    const { taskId, token } = await h.newTask(READ_POLICY);
    expect((await get(token)).status).toBe(200);
    // A key row the verifier cannot import (hand-edited, or written by a faulty tool). It used to
    // fail every full reload from then on (the worker stale until the row was mended).
    const bad = newKid();
    await h.t.db.signingKey.create({ data: { kid: bad, alg: "EdDSA", publicJwk: { kty: "OKP", crv: "Ed25519" }, privateKeySealed: "none", retiredAt: new Date() } });
    await h.sync();
    expect(h.core.policy.status().stale).toBe(false);
    expect(h.core.tokens.unusableKeys().map((k) => k.kid)).toEqual([bad]);
    expect((await get(token)).status).toBe(200);
    // A task end whose notification is lost comes with the next full reload.
    await admin.query("BEGIN");
    await admin.query("SET LOCAL session_replication_role = replica");
    await admin.query("UPDATE tasks SET status = 'ended', ended_at = now() WHERE id = $1::uuid", [taskId]);
    await admin.query("COMMIT");
    await h.sync();
    expect((await get(token)).status).toBe(407);
    await h.t.adminDb().signingKey.delete({ where: { kid: bad } });
    await h.sync();
    expect(h.core.tokens.unusableKeys()).toEqual([]);
  });

  it("a load that fails after the verifier took its revocations keeps a task end out of nothing: tokens, sandboxes, open tunnels", async () => {
    const { taskId, token } = await h.newTask(READ_POLICY);
    expect((await get(token)).status).toBe(200);
    const sandboxed = await h.newTask(READ_POLICY);
    await h.t.adminDb().sandbox.create({ data: { taskId: sandboxed.taskId, name: "sandbox-reload", sourceAddress: "127.0.0.4" } });
    await h.sync();
    expect((await fromSandbox("127.0.0.4")).status).toBe(200);
    // A passthrough tunnel of a third task: nothing inside it is re-checked, only the kill switch closes it.
    await h.addService({ id: "opaque", hosts: ["tunnel.test"], scheme: "https", ports: [up.port], protocol: "rest", proxy: { tls: "passthrough", internalAddresses: ["127.0.0.1/32"] } });
    const tunnelled = await h.newTask("unlisted: deny\nrules:\n  - service: opaque\n    effects: [irreversible]\n    waive_approval: true\n");
    const tunnel = await connectTunnel(h.proxyPort, `tunnel.test:${up.port}`, { "proxy-authorization": `Bearer ${tunnelled.token}` });
    expect(tunnel.status).toBe(200);

    // Every load fails from now on just after the verifier has taken the snapshot's revocations
    // (what a key that would not import did before such keys were left out), so nothing that
    // listens after it (the enforcement state, the kill switch's snapshot) sees the snapshot, and
    // the worker says so (stale).
    let failing = true;
    const apply = h.core.tokens.applySnapshot.bind(h.core.tokens);
    h.core.tokens.applySnapshot = async (snapshot, now) => {
      await apply(snapshot, now);
      if (failing) throw new Error("the snapshot could not be taken past the verifier");
    };
    await h.sync();
    expect(h.core.policy.status().stale).toBe(true);

    // The task is ended while the worker's notification is lost (its listener reconnecting), so
    // only a full reload (the reconnect's, the periodic reconcile's) can bring it.
    const endedAt = new Date();
    await admin.query("BEGIN");
    await admin.query("SET LOCAL session_replication_role = replica");
    await admin.query("UPDATE tasks SET status = 'ended', ended_at = now() WHERE id = ANY($1::uuid[])", [[taskId, sandboxed.taskId, tunnelled.taskId]]);
    await admin.query("COMMIT");
    const ended = performance.now();
    await h.sync();
    expect(h.core.policy.status().stale).toBe(true);
    // The kill switch sweeps after a load that failed too: the open tunnel of an ended task is closed.
    try {
      expect(await closedAfter(tunnel.socket, ended, 2_000)).toBeLessThan(2_000);
    } finally {
      tunnel.socket.destroy();
    }

    const hitsBefore = up.hits.length;
    const after = await get(token);
    expect(after.status).toBe(407);
    expect(after.json?.error).toBe("token_task_revoked");
    // A sandbox is known by its address, not by a token: the revocation counts for it too.
    const sandbox = await fromSandbox("127.0.0.4");
    expect(sandbox.status).toBe(407);
    expect(sandbox.raw).toContain("task_revoked");
    // Refused as it was asked, not judged allowed and then stopped: no allowed decision is
    // recorded for the ended sandbox task.
    const allowed = await h.t.db.auditEvent.findMany({ where: { taskId: sandboxed.taskId, type: "proxy.decision", outcome: "allow", at: { gt: endedAt } } });
    expect(allowed).toEqual([]);
    expect(up.hits.length).toBe(hitsBefore);
    failing = false;
    h.core.tokens.applySnapshot = apply;
  });
});
