import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { endTask } from "@/lib/tasks/tasks";
import { registerExternalSandbox, stopSandbox } from "@/lib/sandboxes/sandboxes";
import { startStack, type Stack } from "../../support/isolation/stack";
import { sh } from "../../support/isolation/topology";

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

  // The fence matches interfaces by prefix (`bh<id>h*`): with instances `q` and `qh12` on one
  // machine, `q`'s fence took in `qh12`'s sandboxes too (capturing their TCP to its own listener,
  // dropping their traffic to their own), although two instances must never touch each other's.
  it.sequential("an instance whose interfaces another instance's fence would match is refused before its fence is installed", async () => {
    const { taskId } = await s.newTask(DENY_ALL);
    const short = "q";
    const id = `qh${s.topo.run.slice(0, 2)}`;
    const hostNft = (...args: string[]) => sh("ip", ["netns", "exec", s.topo.host, "nft", ...args]);
    const planted = await hostNft("add", "table", "inet", `bulkhead_${short}`);
    expect(planted.code, planted.stderr).toBe(0);
    const dataDir = await mkdtemp(path.join(tmpdir(), "bh-overlap-"));
    try {
      const env = s.env({ BULKHEAD_DATA_DIR: dataDir, BULKHEAD_AUDIT_WAL_DIR: path.join(dataDir, "audit-wal"), BULKHEAD_INSTANCE_ID: id, BULKHEAD_SANDBOX_POOL_V4: "10.215.0.0/30", BULKHEAD_SANDBOX_POOL_V6: "fd42:b17e:af00::/120", BULKHEAD_SANDBOX_LISTEN_PORT: "15201", BULKHEAD_SANDBOX_DNS_PORT: "15253" });
      const run = await s.topo.bulkhead(["sandbox", "run", "--task", taskId, "--", "true"], env, 90_000);
      expect(run.code).not.toBe(0);
      expect(run.stderr).toMatch(new RegExp(`BULKHEAD_INSTANCE_ID ${id} and the instance ${short} on this machine would match each other's sandbox interfaces`));
      expect((await hostNft("list", "tables")).stdout).not.toContain(`bulkhead_${id}`);
      expect((await sh("ip", ["netns", "list"])).stdout).not.toContain(`bh-${id}-`);
    } finally {
      await hostNft("delete", "table", "inet", `bulkhead_${short}`);
      await rm(dataDir, { recursive: true, force: true });
      await endTask(s.t.db, s.admin, taskId, "test ends the task").catch(() => undefined);
    }
  }, 600_000);
});
