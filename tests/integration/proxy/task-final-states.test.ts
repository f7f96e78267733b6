import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { endTask } from "@/lib/tasks/tasks";
import { viaProxy } from "../../support/proxy-client";
import { onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

/**
 * A kill switch stays pulled. A task that ended, expired or was revoked never becomes active
 * again: nothing in Bulkhead reactivates one, and the worker's token check follows the task's
 * status. Before, the worker's database role (its grant on tasks.status is for recording expiry)
 * or the dashboard's could write status = 'active' on an ended or revoked task, with no audit
 * event. A running worker remembers the revocation (this file checks it keeps refusing), but a
 * worker started afterwards (a restart, another machine) loads the task as active, and the
 * dashboard's approval checks and token minting read its status: the kill switch was undone. Now
 * (migration 20261206004000_task_final_states) ended, expired and revoked are final for every
 * role, and a role that cannot create tasks (the worker's) may only mark an active task expired.
 */
describe("tasks: ended, expired and revoked are final", () => {
  let h: ProxyHarness;
  let railway: Upstream;
  const RAILWAY = "backboard.railway.com";
  const READ = { query: 'query { environment(id: "env_staging") { id } }' };
  const POLICY = "unlisted: deny\nrules:\n  - service: railway\n    environments: [staging]\n    effects: [read]\n";

  const send = (token: string) =>
    viaProxy(h.proxyPort, `http://${RAILWAY}:${railway.port}/graphql/v2`, { token, headers: { "content-type": "application/json" }, body: JSON.stringify(READ) });
  /** One statement as `url`'s role; its SQLSTATE, or null when it ran. */
  const asRole = async (url: string, sql: string, params: unknown[]): Promise<string | null> => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(sql, params);
      return null;
    } catch (error) {
      return String((error as { code?: unknown }).code);
    } finally {
      await client.end();
    }
  };
  const REACTIVATE = `UPDATE tasks SET status = 'active', ended_at = NULL, ended_reason = NULL WHERE id = $1::uuid`;

  beforeAll(async () => {
    railway = await startHttpUpstream();
    h = await startProxyHarness();
    await h.addService(onLoopback("railway", railway.port, { scheme: "http" }));
    await h.t.db.setting.create({ data: { key: "inventory.yaml", value: "entries:\n  - environment: staging\n    service: railway\n    resources: [env_staging]\n" } });
  });
  afterAll(async () => {
    await h?.close();
    await railway?.close();
  });

  it("an ended task cannot be made active again by the worker's role: its token stays refused", async () => {
    const task = await h.newTask(POLICY);
    expect((await send(task.token)).status).toBe(200);
    await endTask(h.t.db, h.admin, task.taskId);
    await h.sync();
    expect((await send(task.token)).status).toBe(407);
    const before = railway.hits.length;
    const code = await asRole(h.t.workerUrl, REACTIVATE, [task.taskId]);
    await h.sync();
    expect((await send(task.token)).status, "the running worker still refuses the token").toBe(407);
    expect(railway.hits.length).toBe(before);
    expect(code).toBe("23514");
    expect((await h.t.db.task.findUniqueOrThrow({ where: { id: task.taskId } })).status).toBe("ended");
  });

  it("no role brings back an ended, expired or revoked task; the worker's role may only mark one expired", async () => {
    const ended = await h.newTask(POLICY);
    await endTask(h.t.db, h.admin, ended.taskId);
    const revoked = await h.newTask(POLICY);
    await h.t.db.task.update({ where: { id: revoked.taskId }, data: { status: "revoked", endedAt: new Date(), endedReason: "agent suspended" } });
    const expired = await h.newTask(POLICY);
    // Only once its time is up (migration 20261207101000: an hour early it is refused).
    expect(await asRole(h.t.workerUrl, `UPDATE tasks SET status = 'expired', ended_at = now() WHERE id = $1::uuid`, [expired.taskId])).toBe("42501");
    await h.t.db.task.update({ where: { id: expired.taskId }, data: { expiresAt: new Date(Date.now() - 1000) } });
    expect(await asRole(h.t.workerUrl, `UPDATE tasks SET status = 'expired', ended_at = now() WHERE id = $1::uuid`, [expired.taskId])).toBeNull();
    for (const id of [ended.taskId, revoked.taskId, expired.taskId]) {
      for (const [role, url] of [["worker", h.t.workerUrl], ["dashboard", h.t.url], ["superuser", h.t.adminUrl]] as const) {
        expect(await asRole(url, REACTIVATE, [id]), `${role}`).toBe("23514");
      }
      // From one final state to another: the record of what happened stays.
      expect(await asRole(h.t.url, `UPDATE tasks SET status = 'ended' WHERE id = $1::uuid AND status <> 'ended'`, [id])).toBe(id === ended.taskId ? null : "23514");
    }
    const active = await h.newTask(POLICY);
    for (const status of ["ended", "revoked"]) {
      expect(await asRole(h.t.workerUrl, `UPDATE tasks SET status = $2::"TaskStatus", ended_at = now() WHERE id = $1::uuid`, [active.taskId, status]), status).toBe("42501");
    }
    expect((await h.t.db.task.findUniqueOrThrow({ where: { id: active.taskId } })).status).toBe("active");
  });
});
