import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CANARY4, CANARY6, CANARY_RESOLVER, CANARY_ULA, startStack, waitFor, type Stack } from "../../support/isolation/stack";
import { sh } from "../../support/isolation/topology";
import { makeUser } from "../../support/factories";

/**
 * The escapes of the threat model, tried from inside real sandboxes against canaries that would
 * answer if reached; the self-test catching a fence with a rule removed; the launcher's refusals
 * (no CAP_NET_ADMIN, pool exhausted); and a Bulkhead killed with SIGKILL: the fence holds while it
 * is dead, and the next start removes its own leftovers and nobody else's.
 */
const DENY_ALL = "unlisted: deny\nrules: []\n";

interface VerifyOutput {
  passed: boolean;
  sandboxId: string;
  results: Array<{ escape: string; expected: string; got: string; escaped: boolean }>;
}

describe("sandboxes: escapes, the self-test, and failure", () => {
  let s: Stack;
  const canaryFlags = () => [
    "--canary-v4", CANARY4, "--canary-v6", CANARY6, "--canary-ula", CANARY_ULA, "--canary-port", "80", "--canary-udp-port", "9999", "--canary-resolver", CANARY_RESOLVER,
    "--bulkhead-address", s.topo.hostAddress4, "--bulkhead-address", s.topo.hostAddress6,
  ];
  const verify = async (taskId: string) => verifyWith(["--task", taskId]);
  const verifyWith = async (args: string[]) => {
    const run = await s.topo.bulkhead(["sandbox", "verify", ...args, "--json", ...canaryFlags()], s.env());
    const line = run.stdout.trim().split("\n").find((l) => l.startsWith("{"));
    return { run, out: line ? (JSON.parse(line) as VerifyOutput) : null };
  };
  const table = () => `inet bulkhead_${s.topo.instanceId}`;

  beforeAll(async () => {
    s = await startStack();
    await s.startWorker();
  }, 600_000);
  afterAll(async () => {
    await s?.close();
  });

  it.sequential("every escape of the self-test fails, nothing outside is reached, and each attempt is audited", async () => {
    const { taskId } = await s.newTask(DENY_ALL);
    const { run, out } = await verify(taskId);
    expect(out, `${run.code} ${run.stderr}\n${run.stdout}`).not.toBeNull();
    const escaped = out!.results.filter((r) => r.escaped);
    expect(escaped, JSON.stringify(escaped)).toEqual([]);
    expect(run.code).toBe(0);
    // The catalogue is complete: every class of SECURITY.md's sandbox list was tried.
    const names = out!.results.map((r) => r.escape).join("\n");
    for (const escape of [/non-Bulkhead address \(IPv4\)/, /global IPv6/, /unique-local IPv6/, /link-local/, /UDP to an outside/, /outside resolver/, /TXT/, /long-label/, /853/, /DNS over HTTPS/, /ICMP/, /raw IPv4 socket/, /packet socket/, /169\.254\.169\.254/, /fd00:ec2::254/, /health port/, /dashboard/, /explicit proxy/, /database/, /nested user namespace/, /unshare -r --net/, /unshare -r --mount/, /network namespace \(unshare --net\)/, /max_user_namespaces/]) {
      expect(names).toMatch(escape);
    }
    expect(s.canary.tcpHits + s.canary.udpHits + s.canary6.tcpHits + s.canary6.udpHits).toBe(0);
    expect(s.resolver.queries).toBe(0);
    // Audited: the verify run, the refused connections, the dropped packets and the DNS queries.
    const sandboxId = out!.sandboxId;
    // The fence's counters are read in batches (on the clock and at teardown): the drops of one
    // run may be spread over several events, so wait for the flows this test looks for.
    type Flow = { destination: string; protocol: string; port: number };
    const flowsOf = (rows: Array<{ type: string; data: unknown }>) => rows.filter((e) => e.type === "sandbox.escape_blocked").flatMap((e) => (e.data as { flows: Flow[] }).flows);
    const events = await waitFor(
      "the fence's drops to be audited",
      async () => {
        const rows = await s.t.db.auditEvent.findMany({ where: { taskId }, orderBy: { id: "asc" } });
        const seen = flowsOf(rows);
        const complete = seen.some((f) => f.destination === CANARY4 && f.protocol === "udp" && f.port === 9999) && seen.some((f) => f.destination === CANARY6 && f.protocol === "udp");
        const dns = rows.filter((e) => e.type === "sandbox.dns").map((e) => e.data as { nxdomain: number; refused: number });
        const dnsComplete = dns.reduce((n, d) => n + d.nxdomain, 0) >= 2 && dns.reduce((n, d) => n + d.refused, 0) >= 1;
        return complete && dnsComplete ? rows : null;
      },
      20_000,
      250,
    );
    const verifyEvent = events.find((e) => e.type === "sandbox.verify");
    expect(verifyEvent?.outcome).toBe("allow");
    const drops = events.filter((e) => e.type === "sandbox.escape_blocked");
    expect(drops.every((e) => (e.data as { sandboxId?: string }).sandboxId === sandboxId)).toBe(true);
    const flows = flowsOf(drops);
    expect(flows.some((f) => f.destination === CANARY4 && f.protocol === "udp" && f.port === 9999)).toBe(true);
    expect(flows.some((f) => f.destination === CANARY6 && f.protocol === "udp")).toBe(true);
    const refused = events.filter((e) => e.type === "proxy.decision" && e.outcome === "deny");
    expect(refused.length).toBeGreaterThan(5);
    const dns = events.filter((e) => e.type === "sandbox.dns").map((e) => e.data as { nxdomain: number; refused: number });
    expect(dns.reduce((n, d) => n + d.nxdomain, 0)).toBeGreaterThanOrEqual(2);
    expect(dns.reduce((n, d) => n + d.refused, 0)).toBeGreaterThanOrEqual(1);
    const row = await s.t.db.sandbox.findUnique({ where: { id: sandboxId } });
    expect(row?.blockedAttempts).toBeGreaterThan(0);
  }, 600_000);

  it.sequential("drops in a sandbox's last moment are audited against its task, however soon after them it ends", async () => {
    const { taskId } = await s.newTask(DENY_ALL);
    // A command that tries to leave and exits at once: the sandbox is torn down well before the
    // fence's counters would next be read on the clock.
    const script = `
const dgram = require("node:dgram");
const socket = dgram.createSocket("udp4");
let sent = 0;
const next = () => (sent++ < 5 ? socket.send("escape", 9999, ${JSON.stringify(CANARY4)}, next) : socket.close());
next();
`;
    const run = await s.topo.bulkhead(["sandbox", "run", "--task", taskId, "--", process.execPath, "-e", script], s.env());
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain("torn down");
    const sandbox = await s.t.db.sandbox.findFirst({ where: { taskId } });
    const drops = await waitFor(
      "the last drops to be audited against the task",
      async () => {
        const rows = await s.t.db.auditEvent.findMany({ where: { taskId, type: "sandbox.escape_blocked" } });
        const flows = rows.flatMap((e) => (e.data as { flows: Array<{ destination: string; protocol: string; port: number; packets: number }> }).flows);
        const packets = flows.filter((f) => f.destination === CANARY4 && f.protocol === "udp" && f.port === 9999).reduce((n, f) => n + f.packets, 0);
        return packets >= 5 ? rows : null;
      },
      20_000,
      250,
    );
    expect(drops.every((e) => (e.data as { sandboxId?: string }).sandboxId === sandbox?.id)).toBe(true);
    expect(s.canary.udpHits).toBe(0);
    // None of them is left to an unbound tally (which names no task).
    const unbound = await s.t.db.auditEvent.findMany({ where: { type: "sandbox.escape_blocked", taskId: null } });
    expect(unbound.filter((e) => (e.data as { source?: string }).source === sandbox?.sourceAddress)).toEqual([]);
  }, 600_000);

  it.sequential("drops just before the worker stops are audited on its way out, and once: the next worker does not count them again", async () => {
    const { taskId } = await s.newTask(DENY_ALL);
    const launcher = s.topo.spawnBulkhead(["sandbox", "run", "--task", taskId, "--", "sleep", "120"], s.env());
    try {
      const box = await s.liveSandbox(taskId, launcher);
      const inside = await s.topo.helper(box.name);
      // Sent and the worker stopped at once: the counters are otherwise read only every 2 s.
      for (let i = 0; i < 4; i++) expect(await inside.udpExchange(CANARY4, 9998, "escape", 10)).toBeNull();
      await s.stopWorker();
      inside.close();
      await s.startWorker();
      const rows = await waitFor(
        "the drops read at the stop to be audited",
        async () => {
          const events = await s.t.db.auditEvent.findMany({ where: { taskId, type: "sandbox.escape_blocked" } });
          const flows = events.flatMap((e) => (e.data as { flows: Array<{ destination: string; protocol: string; port: number; packets: number }> }).flows);
          return flows.filter((f) => f.destination === CANARY4 && f.port === 9998).reduce((n, f) => n + f.packets, 0) >= 4 ? events : null;
        },
        20_000,
        250,
      );
      expect(rows.every((e) => (e.data as { sandboxId?: string }).sandboxId === box.id)).toBe(true);
      // Once each: the restarted worker starts from the counts the stopped one audited, not from
      // zero (which would audit them again, and every earlier drop still in the fence with them).
      await new Promise((r) => setTimeout(r, 4500));
      const again = await s.t.db.auditEvent.findMany({ where: { taskId, type: "sandbox.escape_blocked" } });
      const packets = again.flatMap((e) => (e.data as { flows: Array<{ destination: string; port: number; packets: number }> }).flows).filter((f) => f.destination === CANARY4 && f.port === 9998);
      expect(packets.reduce((n, f) => n + f.packets, 0)).toBe(4);
      expect((await s.t.db.sandbox.findUnique({ where: { id: box.id } }))?.blockedAttempts).toBe(4);
    } finally {
      launcher.kill("SIGTERM");
      await new Promise((r) => (launcher.exitCode !== null ? r(null) : launcher.once("exit", r)));
    }
  }, 600_000);

  it.sequential("the launcher refuses without CAP_NET_ADMIN, in one line, before touching anything", async () => {
    const { taskId } = await s.newTask(DENY_ALL);
    // Only this file's namespaces and what its launcher would create (named after its instance):
    // other test files, and other runs on the machine, add and remove theirs meanwhile.
    const ours = async () => (await sh("ip", ["netns", "list"])).stdout.split("\n").filter((l) => l.startsWith(s.topo.host.replace(/host$/, "")) || l.startsWith(`bh-${s.topo.instanceId}-`)).join("\n");
    const before = await ours();
    const run = await sh(
      "nsenter",
      [`--net=/run/netns/${s.topo.host}`, "--", "setpriv", "--inh-caps=-all", "--bounding-set=-all", "--", process.execPath, "bin/bulkhead.mjs", "sandbox", "run", "--task", taskId, "--", "true"],
      { env: s.env(), timeoutMs: 90_000 },
    );
    expect(run.code).not.toBe(0);
    const lines = run.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/CAP_NET_ADMIN/);
    expect(await ours()).toBe(before);
    expect(await s.t.db.sandbox.count({ where: { taskId } })).toBe(0);
  }, 600_000);

  it.sequential("an exhausted address pool is a clear error and nothing is half-created", async () => {
    const { taskId } = await s.newTask(DENY_ALL);
    // A pool of one address, under its own instance (its own fence table and names) and data
    // folder, with no worker of its own: what `sandbox run` does before anyone starts Bulkhead.
    const dataDir = await mkdtemp(path.join(tmpdir(), "bh-pool-"));
    const env = s.env({ BULKHEAD_DATA_DIR: dataDir, BULKHEAD_AUDIT_WAL_DIR: path.join(dataDir, "audit-wal"), BULKHEAD_INSTANCE_ID: `p${s.topo.run}`, BULKHEAD_SANDBOX_POOL_V4: "10.214.0.0/30", BULKHEAD_SANDBOX_POOL_V6: "fd42:b17e:ae00::/120", BULKHEAD_SANDBOX_LISTEN_PORT: "15101", BULKHEAD_SANDBOX_DNS_PORT: "15153" });
    const tables = async () => (await sh("ip", ["netns", "exec", s.topo.host, "nft", "list", "tables"])).stdout;
    const first = s.topo.spawnBulkhead(["sandbox", "run", "--task", taskId, "--", "sleep", "120"], env);
    const box = await s.liveSandbox(taskId, first);
    // Only this instance's namespaces: other tests create and remove their own meanwhile.
    const ours = async () => (await sh("ip", ["netns", "list"])).stdout.split("\n").filter((l) => l.startsWith(`bh-p${s.topo.run}-`)).sort().join("\n");
    const netnsBefore = await ours();
    const rowsBefore = await s.t.db.sandbox.count();
    const second = await s.topo.bulkhead(["sandbox", "run", "--task", taskId, "--", "true"], env);
    expect(second.code).not.toBe(0);
    expect(second.stderr).toMatch(/pool 10\.214\.0\.0\/30 is exhausted/);
    expect(second.stderr).toMatch(/Nothing was created/);
    expect(netnsBefore).not.toBe("");
    expect(await ours()).toBe(netnsBefore);
    expect(await s.t.db.sandbox.count()).toBe(rowsBefore);
    // The failed launcher leaves the fence the running sandbox needs.
    expect(await tables()).toContain(`table inet bulkhead_p${s.topo.run}`);
    first.kill("SIGTERM");
    await new Promise((r) => first.once("exit", r));
    const row = await s.t.db.sandbox.findUnique({ where: { id: box.id } });
    expect(row?.removedAt).not.toBeNull();
    // The instance's last sandbox ended and none of its workers runs: its fence goes with it; the
    // running worker's instance keeps its own.
    expect(await tables()).not.toContain(`table inet bulkhead_p${s.topo.run}`);
    expect(await tables()).toContain(`table inet bulkhead_${s.topo.instanceId}`);
    await rm(dataDir, { recursive: true, force: true });
  }, 600_000);

  it.sequential("the self-test fails when a fence rule is removed on purpose, and `run --verify` then refuses to start the command", async () => {
    const { taskId } = await s.newTask(DENY_ALL);
    // Break the fence: stop capturing TCP and stop dropping what would be forwarded.
    for (const chain of ["capture", "relay"]) {
      const r = await sh("ip", ["netns", "exec", s.topo.host, "nft", "flush", "chain", ...table().split(" "), chain]);
      expect(r.code, r.stderr).toBe(0);
    }
    try {
      const { run, out } = await verify(taskId);
      expect(run.code, `${run.stderr}\n${run.stdout}`).toBe(3);
      const escaped = out!.results.filter((r) => r.escaped).map((r) => r.escape);
      expect(escaped).toEqual(expect.arrayContaining(["TCP to a non-Bulkhead address (IPv4)", "TCP to a global IPv6 address"]));
      expect(s.canary.tcpHits).toBeGreaterThan(0);
      const verified = await s.t.db.auditEvent.findFirst({ where: { taskId, type: "sandbox.verify" }, orderBy: { id: "desc" } });
      expect(verified?.outcome).toBe("deny");

      const guarded = await s.topo.bulkhead(["sandbox", "run", "--task", taskId, "--verify", ...canaryFlags(), "--", "/bin/sh", "-c", "echo COMMAND-RAN"], s.env());
      expect(guarded.code).toBe(3);
      expect(guarded.stdout).not.toContain("COMMAND-RAN");
      expect(guarded.stderr).toMatch(/self-test failed/);
    } finally {
      // Restore: the next launcher installs the fence again when the table is missing.
      await sh("ip", ["netns", "exec", s.topo.host, "nft", "delete", "table", ...table().split(" ")]);
    }
    // Restored, checked through the self-test's own throwaway task (no --task), which needs an
    // owner for its agent: with two admins the CLI cannot pick one and says so before launching.
    const second = await makeUser(s.t.db, "admin");
    const unowned = await verifyWith([]);
    expect(unowned.run.code, unowned.run.stderr).toBe(1);
    expect(unowned.run.stderr).toContain("Several admins could own the agent: pass --owner EMAIL naming its owner. (The self-test registers that agent, bulkhead-self-test");
    expect(await s.t.db.agent.findUnique({ where: { name: "bulkhead-self-test" } })).toBeNull();
    const again = await verifyWith(["--owner", second.user.email]);
    expect(again.out?.passed, `${again.run.stderr}\n${JSON.stringify(again.out?.results.filter((r) => r.escaped))}`).toBe(true);
    const selfTest = await s.t.db.agent.findUnique({ where: { name: "bulkhead-self-test" }, include: { owner: true, tasks: true } });
    expect(selfTest?.owner.email).toBe(second.user.email);
    expect(selfTest?.tasks.map((t) => t.status)).toEqual(["ended"]);
  }, 600_000);

  it.sequential("after SIGKILL of Bulkhead the fence still holds; the next start removes its own leftovers and never another instance's", async () => {
    const tables = async () => (await sh("ip", ["netns", "exec", s.topo.host, "nft", "list", "tables"])).stdout;
    // While the worker runs its fence stays, sandbox or not: a cleanup leaves it in place.
    expect((await sh("ip", ["netns", "list"])).stdout).not.toContain(`bh-${s.topo.instanceId}-`);
    const early = await s.topo.bulkhead(["sandbox", "cleanup", "--json"], s.env());
    expect(early.code, early.stderr).toBe(0);
    expect(await tables()).toContain(`table inet bulkhead_${s.topo.instanceId}`);

    const { taskId } = await s.newTask(DENY_ALL);
    const hitsBefore = s.canary.tcpHits + s.canary.udpHits;
    const other = s.env({ BULKHEAD_INSTANCE_ID: `u${s.topo.run}`, BULKHEAD_SANDBOX_LISTEN_PORT: "15201", BULKHEAD_SANDBOX_DNS_PORT: "15253" });
    // The other instance's sandbox runs another task, so each row is found unambiguously.
    const { taskId: theirTask } = await s.newTask(DENY_ALL);
    const mine = s.topo.spawnBulkhead(["sandbox", "run", "--task", taskId, "--", "sleep", "300"], s.env());
    const theirs = s.topo.spawnBulkhead(["sandbox", "run", "--task", theirTask, "--", "sleep", "300"], other);
    const box = await s.liveSandbox(taskId, mine);
    await waitFor("the other instance's sandbox", async () => /ready at /.test(theirs.output.stderr), 180_000);
    const theirName = (await s.t.db.sandbox.findFirst({ where: { taskId: theirTask, removedAt: null, instanceId: `u${s.topo.run}` } }))!.name;

    // Bulkhead dies: the launchers and the worker, all at once, without a chance to clean up.
    mine.kill("SIGKILL");
    theirs.kill("SIGKILL");
    s.killWorker();
    await new Promise((r) => setTimeout(r, 500));
    const inside = await s.topo.helper(box.name);
    const attempt = await inside.connect(CANARY4, 80).then(
      (socket) =>
        new Promise<string>((resolve) => {
          let data = "";
          socket.on("data", (c: Buffer) => (data += c.toString()));
          socket.on("close", () => resolve(data));
          setTimeout(() => resolve(data), 2000);
        }),
      (error: Error) => `refused: ${error.message}`,
    );
    expect(attempt).not.toContain("BULKHEAD-CANARY");
    expect(await inside.udpExchange(CANARY4, 9999, "hello", 1000)).toBeNull();
    expect(s.canary.tcpHits + s.canary.udpHits).toBe(hitsBefore);
    // Still in place while Bulkhead is dead.
    expect((await sh("ip", ["netns", "list"])).stdout).toContain(box.name);

    // Bulkhead starts again (its cleanup step): its own leftovers go, the other instance's stay.
    expect(await tables()).toContain(`table inet bulkhead_${s.topo.instanceId}`);
    const cleanup = await s.topo.bulkhead(["sandbox", "cleanup", "--json"], s.env());
    expect(cleanup.code, cleanup.stderr).toBe(0);
    expect(JSON.parse(cleanup.stdout.trim()).removed).toContain(box.name);
    const after = (await sh("ip", ["netns", "list"])).stdout;
    expect(after).not.toContain(box.name);
    expect(after).toContain(theirName);
    const row = await s.t.db.sandbox.findUnique({ where: { id: box.id } });
    expect(row?.removedAt).not.toBeNull();
    expect(row?.removedReason).toMatch(/left over/);
    expect((await s.t.db.sandbox.findFirst({ where: { name: theirName } }))?.removedAt).toBeNull();
    // Its fence too, now that no sandbox and no worker of it is left (a killed worker leaves it);
    // the other instance's stays while its sandbox lives.
    expect(JSON.parse(cleanup.stdout.trim()).removed).toContain(`table inet bulkhead_${s.topo.instanceId}`);
    expect(await tables()).not.toContain(`table inet bulkhead_${s.topo.instanceId}`);
    expect(await tables()).toContain(`table inet bulkhead_u${s.topo.run}`);

    const theirCleanup = await s.topo.bulkhead(["sandbox", "cleanup", "--json"], other);
    expect(JSON.parse(theirCleanup.stdout.trim()).removed).toContain(theirName);
    expect((await sh("ip", ["netns", "list"])).stdout).not.toContain(theirName);
    expect(await tables()).not.toContain(`table inet bulkhead_u${s.topo.run}`);
  }, 600_000);
});
