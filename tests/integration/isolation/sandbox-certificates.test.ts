import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type net from "node:net";
import tls from "node:tls";
import { endTask } from "@/lib/tasks/tasks";
import { GATEWAY4, PLAIN, startStack, type Stack } from "../../support/isolation/stack";

/**
 * The sandbox listener's leaf certificates, asked for from inside a sandbox: a sandbox may dial
 * any address and present any SNI that agrees with it (an IP literal agrees with itself), so each
 * handshake could make the worker mint a leaf (a key and a signature) and push other tasks'
 * leaves out of the shared cache.
 */
const PLAIN_READ = "unlisted: deny\nrules:\n  - service: plainapi\n    effects: [read]\n";
/** Anything may be asked for (a person decides): every destination is reachable. */
const HOLD_ALL = "unlisted: hold\nrules:\n  - service: plainapi\n    effects: [read]\n";
/** Refusal audit windows of a second, so that a flood's aggregate event is written within the test. */
const WORKER = { BULKHEAD_REFUSAL_AUDIT_WINDOW_SECONDS: "1" };

interface Refused {
  originalDestination?: string;
  listener?: string;
  sandboxId?: string;
  code?: string;
  aggregated?: boolean;
  count?: number;
}

/** The task's refusals with `code`: how many connections they stand for (a flood is aggregated), and the individual ones. */
async function refusalsOf(s: Stack, taskId: string, code: string): Promise<{ total: number; individual: Refused[] }> {
  const events = await s.t.db.auditEvent.findMany({ where: { taskId, outcome: "deny" } });
  const data = events.map((e) => e.data as Refused).filter((d) => d.code === code);
  return { total: data.reduce((n, d) => n + (d.aggregated ? (d.count ?? 0) : 1), 0), individual: data.filter((d) => !d.aggregated) };
}

/** What a TLS handshake over `socket` with `servername` comes to: a certificate, or a close. */
function handshake(socket: net.Socket, servername: string): Promise<{ outcome: "connected" | "closed" | "timeout"; certificate: string | null }> {
  return new Promise((resolve) => {
    // An IP literal as SNI: what the attack sends (Node warns about it, and sends it).
    const client = tls.connect({ socket, servername, rejectUnauthorized: false });
    const timer = setTimeout(() => done("timeout"), 10_000);
    const done = (outcome: "connected" | "closed" | "timeout") => {
      clearTimeout(timer);
      const cn = outcome === "connected" ? client.getPeerCertificate().subject?.CN : null;
      const certificate = cn === null ? null : String(cn ?? "");
      client.destroy();
      socket.destroy();
      resolve({ outcome, certificate });
    };
    client.once("secureConnect", () => done("connected"));
    client.on("error", () => done("closed"));
    client.once("close", () => done("closed"));
  });
}

describe("sandboxes: leaf certificates for destinations the task cannot reach", () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack();
    await s.startWorker(WORKER);
  }, 600_000);
  afterAll(async () => {
    await s?.close();
  });

  // 4,000 handshakes to distinct 10.99.x.y:443 with SNI = that address minted 4,000 leaves, with
  // nothing audited and other tasks' latency going up: the policy could let nothing through there.
  it("a handshake naming an address no service of the task is at is closed before any certificate is made, and audited; a reachable name still gets its leaf", async () => {
    const { taskId } = await s.newTask(PLAIN_READ);
    const launcher = s.topo.spawnBulkhead(["sandbox", "run", "--task", taskId, "--", "sleep", "120"], s.env());
    try {
      const box = await s.liveSandbox(taskId, launcher);
      const inside = await s.topo.helper(box.name);
      const addresses = Array.from({ length: 24 }, (_, i) => `10.99.${Math.floor(i / 8)}.${(i % 8) + 1}`);
      const outcomes = [];
      for (const address of addresses) outcomes.push(await handshake(await inside.connect(address, 443), address));
      expect(outcomes.map((o) => o.outcome), s.workerLog().slice(-3000)).toEqual(addresses.map(() => "closed"));
      expect(outcomes.every((o) => o.certificate === null)).toBe(true);
      // Audited as the listener's other refusals a sandbox can cause in bulk: each connection
      // counted, the first ones as events of their own naming where they went, a flood aggregated.
      await expect.poll(async () => (await refusalsOf(s, taskId, "destination_unreachable")).total, { timeout: 15_000, interval: 250 }).toBe(addresses.length);
      const { individual } = await refusalsOf(s, taskId, "destination_unreachable");
      expect(individual.length).toBeGreaterThan(0);
      for (const d of individual) {
        expect(addresses.map((a) => `${a}:443`)).toContain(d.originalDestination);
        expect(d).toMatchObject({ listener: "transparent", sandboxId: box.id });
      }
      // A name the task's policy reaches (plainapi), at the address the resolver gave for it,
      // is still intercepted with a leaf for that name.
      expect(await inside.resolve(GATEWAY4, "plain.example.test")).toEqual([PLAIN]);
      const reachable = await handshake(await inside.connect(PLAIN, 443), "plain.example.test");
      expect(reachable, s.workerLog().slice(-3000)).toEqual({ outcome: "connected", certificate: "plain.example.test" });
      inside.close();
    } finally {
      await endTask(s.t.db, s.admin, taskId, "test ends the task").catch(() => undefined);
      await new Promise((r) => (launcher.exitCode !== null ? r(null) : launcher.once("exit", r)));
    }
  }, 600_000);

  // With a policy that reaches every destination (a person decides), an address is a destination
  // like any other, and each new one cost a mint: the sandbox's budget bounds them.
  it("a sandbox that has the worker mint more new leaves than its budget is refused further new ones, audited; cached names and other sandboxes are still served", async () => {
    await s.stopWorker();
    await s.startWorker({ ...WORKER, BULKHEAD_SANDBOX_LEAVES_PER_MINUTE: "5" });
    const { taskId } = await s.newTask(HOLD_ALL);
    const other = await s.newTask(HOLD_ALL);
    const launcher = s.topo.spawnBulkhead(["sandbox", "run", "--task", taskId, "--", "sleep", "120"], s.env());
    const neighbour = s.topo.spawnBulkhead(["sandbox", "run", "--task", other.taskId, "--", "sleep", "120"], s.env());
    try {
      const box = await s.liveSandbox(taskId, launcher);
      const inside = await s.topo.helper(box.name);
      const addresses = Array.from({ length: 12 }, (_, i) => `10.99.7.${i + 1}`);
      const outcomes = [];
      for (const address of addresses) outcomes.push((await handshake(await inside.connect(address, 443), address)).outcome);
      expect(outcomes, s.workerLog().slice(-3000)).toEqual([...addresses.slice(0, 5).map(() => "connected"), ...addresses.slice(5).map(() => "closed")]);
      // A name whose leaf is cached costs nothing from the budget.
      expect((await handshake(await inside.connect(addresses[0]!, 443), addresses[0]!)).outcome).toBe("connected");
      await expect.poll(async () => (await refusalsOf(s, taskId, "sandbox_certificate_limit")).total, { timeout: 15_000, interval: 250 }).toBe(addresses.length - 5);
      const { individual } = await refusalsOf(s, taskId, "sandbox_certificate_limit");
      expect(individual[0]).toMatchObject({ listener: "transparent", sandboxId: box.id, originalDestination: `${addresses[5]}:443` });
      // Another sandbox has a budget of its own.
      const theirs = await s.liveSandbox(other.taskId, neighbour);
      const theirInside = await s.topo.helper(theirs.name);
      expect((await handshake(await theirInside.connect("10.99.8.1", 443), "10.99.8.1")).outcome).toBe("connected");
      inside.close();
      theirInside.close();
    } finally {
      for (const id of [taskId, other.taskId]) await endTask(s.t.db, s.admin, id, "test ends the task").catch(() => undefined);
      for (const l of [launcher, neighbour]) await new Promise((r) => (l.exitCode !== null ? r(null) : l.once("exit", r)));
    }
  }, 600_000);
});
