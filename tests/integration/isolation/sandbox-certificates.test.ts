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
    await s.startWorker();
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
      // Audited as the listener's other refusals: one deny per connection, naming where it went.
      const refused = await expect
        .poll(async () => {
          const events = await s.t.db.auditEvent.findMany({ where: { taskId, type: "proxy.decision", outcome: "deny" } });
          return events.filter((e) => (e.data as { code?: string }).code === "destination_unreachable");
        }, { timeout: 15_000, interval: 250 })
        .toHaveLength(addresses.length)
        .then(() => s.t.db.auditEvent.findMany({ where: { taskId, type: "proxy.decision", outcome: "deny" } }));
      const seen = refused.map((e) => (e.data as { originalDestination?: string; listener?: string; sandboxId?: string })).filter((d) => d.originalDestination?.startsWith("10.99."));
      expect(seen.map((d) => d.originalDestination).sort()).toEqual(addresses.map((a) => `${a}:443`).sort());
      expect(seen.every((d) => d.listener === "transparent" && d.sandboxId === box.id)).toBe(true);
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
});
