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
  }, 180_000);
  afterAll(async () => {
    await s?.close();
  });

  it.sequential("plain HTTP and HTTPS with no proxy settings reach allowed upstreams with the credential injected; volumeDelete is refused and never reaches Railway", async () => {
    const { taskId } = await s.newTask(POLICY);
    const run = await s.topo.bulkhead(["sandbox", "run", "--task", taskId, "--", process.execPath, "--input-type=module", "-e", AGENT], s.env());
    expect(run.stderr, run.stderr + run.stdout).toContain("torn down");
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout.trim().split("\n").pop() ?? "{}");
    expect(out.uid).toBe(65534);
    expect(out.env).toEqual([]);
    expect(out.plain.status).toBe(200);
    expect(s.plain.hits.at(-1)?.headers["x-api-key"]).toBe(PLAIN_SECRET);
    expect(out.me, JSON.stringify(out)).toMatchObject({ status: 200 });
    expect(JSON.parse(out.me.body)).toEqual({ data: { me: "agent" } });
    expect(s.railway.hits.at(-1)?.headers.authorization).toBe(`Bearer ${RAILWAY_SECRET}`);
    expect(out.volumeDelete.status).toBe(403);
    expect(JSON.parse(out.volumeDelete.body).error).toBe("policy_deny");
    expect(s.railway.executed.filter((e) => e.startsWith("volumeDelete"))).toEqual([]);
    // Judged and audited like the explicit path, as the transparent listener, bound to the task.
    const events = await s.t.db.auditEvent.findMany({ where: { taskId, type: "proxy.decision" }, orderBy: { id: "asc" } });
    expect(events.filter((e) => e.outcome === "allow").length).toBe(2);
    const denied = events.find((e) => e.outcome === "deny");
    expect((denied?.data as { listener?: string }).listener).toBe("transparent");
    const lifecycle = await s.t.db.auditEvent.findMany({ where: { taskId, type: { startsWith: "sandbox." } }, select: { type: true } });
    expect(lifecycle.map((e) => e.type)).toEqual(expect.arrayContaining(["sandbox.started", "sandbox.removed"]));
    const row = await s.t.db.sandbox.findFirst({ where: { taskId } });
    expect(row?.removedAt).not.toBeNull();
    expect(row?.sourceAddress).toBeNull();
  }, 120_000);
});
