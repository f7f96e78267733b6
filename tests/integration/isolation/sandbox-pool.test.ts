import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { endTask } from "@/lib/tasks/tasks";
import { registerExternalSandbox, stopSandbox } from "@/lib/sandboxes/sandboxes";
import { startStack, type Stack } from "../../support/isolation/stack";

/**
 * The address pool shared by the launcher's sandboxes and the sandboxes registered by address
 * (external ones, through the API): one registration must not keep every launcher out.
 */
const DENY_ALL = "unlisted: deny\nrules: []\n";

describe("sandboxes: the address pool", () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack();
    await s.startWorker();
  }, 600_000);
  afterAll(async () => {
    await s?.close();
  });

  // The launcher counted a slot as taken only by the IPv4 address of a live row: an external
  // sandbox registered at a slot's IPv6 address made it pick that slot again and again, fail the
  // insert each time, and give up ("could not reserve a sandbox address after several attempts").
  it.sequential("a slot whose IPv6 address an external sandbox holds is skipped, and the launcher takes the next", async () => {
    const holder = await s.newTask(DENY_ALL);
    const { taskId } = await s.newTask(DENY_ALL);
    // The first slot's IPv6 address (the pool's third), and the second slot's IPv4 one.
    const external = await registerExternalSandbox(s.t.db, s.admin, { taskId: holder.taskId, address: "fd42:b17e:ad00::2" });
    const externalV4 = await registerExternalSandbox(s.t.db, s.admin, { taskId: holder.taskId, address: "10.213.0.3" });
    try {
      const run = await s.topo.bulkhead(["sandbox", "run", "--task", taskId, "--", "/bin/true"], s.env());
      expect(run.code, run.stderr).toBe(0);
      const row = await s.t.db.sandbox.findFirst({ where: { taskId }, select: { addresses: true } });
      expect(row?.addresses).toBe("10.213.0.4 fd42:b17e:ad00::4");
    } finally {
      for (const sandbox of [external, externalV4]) await stopSandbox(s.t.db, s.admin, sandbox.id);
      for (const id of [holder.taskId, taskId]) await endTask(s.t.db, s.admin, id, "test ends the task").catch(() => undefined);
    }
  }, 600_000);
});
