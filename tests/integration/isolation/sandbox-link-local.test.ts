import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { endTask } from "@/lib/tasks/tasks";
import { CANARY6, startStack, waitFor, type Stack } from "../../support/isolation/stack";
import { sh } from "../../support/isolation/topology";

/**
 * A sandbox speaking from its IPv6 link-local address (fe80::..., which every interface has and
 * any program may bind to, no privilege needed) rather than from the address its sandbox row
 * names: the fence's drop counters are keyed by source address, and a link-local one names no
 * sandbox, so its escape attempts were dropped but counted against no task.
 */
const PLAIN_READ = "unlisted: deny\nrules:\n  - service: plainapi\n    effects: [read]\n";

type Flow = { source: string; destination: string; protocol: string; port: number; packets: number };

describe("sandboxes: escape attempts from a link-local address", () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack();
    await s.startWorker();
  }, 600_000);
  afterAll(async () => {
    await s?.close();
  });

  it.sequential("are dropped and audited against the sandbox's task, TCP included, and nothing outside is reached", async () => {
    const { taskId } = await s.newTask(PLAIN_READ);
    const launcher = s.topo.spawnBulkhead(["sandbox", "run", "--task", taskId, "--", "sleep", "120"], s.env());
    try {
      const box = await s.liveSandbox(taskId, launcher);
      const links = JSON.parse((await sh("ip", ["-n", box.name, "-j", "link", "show"])).stdout) as Array<{ ifname: string }>;
      const ifname = links.map((l) => l.ifname).find((n) => n !== "lo")!;
      // The kernel gives every interface one (usable once its duplicate address detection is done).
      const ll = await waitFor("the sandbox's link-local address", async () => {
        const shown = JSON.parse((await sh("ip", ["-n", box.name, "-6", "-j", "addr", "show", "dev", ifname])).stdout) as Array<{ addr_info: Array<{ local: string; scope: string; tentative?: boolean }> }>;
        return shown.flatMap((l) => l.addr_info).find((a) => a.scope === "link" && !a.tentative)?.local;
      }, 10_000, 200);
      expect(ll).toMatch(/^fe80:/);
      const inside = await s.topo.helper(box.name);
      const from = `${ll}%${ifname}`;
      // UDP to the host side's link-local address and to an outside address, and a TCP
      // connection to the host side, each from the link-local address.
      expect(await inside.udpExchange(`fe80::1%${ifname}`, 9995, "ll", 300, from)).toBeNull();
      expect(await inside.udpExchange(CANARY6, 9994, "ll", 300, from)).toBeNull();
      const tcp = await Promise.race([
        inside.connect(`fe80::1%${ifname}`, 8081, from).then((c) => (c.destroy(), "connected"), (e: unknown) => String(e)),
        new Promise<string>((r) => setTimeout(() => r("no answer"), 3000)),
      ]);
      const flows = await waitFor(
        "the link-local attempts to be audited against the task",
        async () => {
          const rows = await s.t.db.auditEvent.findMany({ where: { taskId, type: "sandbox.escape_blocked" } });
          const seen = rows.flatMap((e) => (e.data as { flows: Flow[] }).flows);
          const want = [9995, 9994, 8081];
          return want.every((port) => seen.some((f) => f.port === port)) ? seen : null;
        },
        20_000,
        250,
      ).catch(async (error: unknown) => {
        const unbound = await s.t.db.auditEvent.findMany({ where: { type: "sandbox.escape_blocked", taskId: null } });
        throw new Error(`${String(error)}; counted against no task: ${JSON.stringify(unbound.map((e) => e.data))}`);
      });
      // Counted as the sandbox's own (its row's IPv6 address), whatever link-local address it used.
      expect(flows.filter((f) => [9995, 9994, 8081].includes(f.port)).every((f) => f.source === box.sourceAddressV6)).toBe(true);
      expect(flows.find((f) => f.port === 8081)?.protocol).toBe("tcp");
      // Dropped before the fence's capture: not even Bulkhead's listener answered it.
      expect(tcp).not.toBe("connected");
      expect(s.canary6.udpHits).toBe(0);
      const row = await s.t.db.sandbox.findUnique({ where: { id: box.id } });
      expect(row?.blockedAttempts).toBeGreaterThanOrEqual(3);
      inside.close();
    } finally {
      await endTask(s.t.db, s.admin, taskId, "test ends the task").catch(() => undefined);
      await new Promise((r) => (launcher.exitCode !== null ? r(null) : launcher.once("exit", r)));
    }
  }, 600_000);
});
