import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadIsolationConfig } from "@/lib/config/isolation";
import { IsolationError } from "@/proxy-worker/isolation/exec";
import { launchSandbox } from "@/proxy-worker/isolation/launcher";
import { hasNetAdmin } from "@/proxy-worker/isolation/exec";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { runCli } from "../../support/cli";
import { makeUser, unique } from "../../support/factories";

/**
 * `sandbox run --task nope` printed Prisma's own refusal ("Invalid `prisma.task.findFirst()`
 * invocation:"), and a well-formed id that names no task was called "not active (ended, expired,
 * revoked, or its agent is suspended)". Nothing here reaches a network namespace or a firewall
 * rule: every refusal comes before the sandbox is built.
 */
describe("a sandbox for a task id that names no task", () => {
  let t: TestDatabase;
  let dir: string;

  beforeAll(async () => {
    t = await createTestDatabase();
    dir = mkdtempSync(path.join(tmpdir(), "bh-sandbox-task-"));
  });
  afterAll(async () => {
    await t.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("is refused by sandbox run and sandbox verify before anything is set up, naming --task", async () => {
    for (const argv of [["sandbox", "run", "--task", "nope", "--", "true"], ["sandbox", "verify", "--task", "nope"]]) {
      const run = await runCli(argv, { database: t });
      expect(run, argv.join(" ")).toMatchObject({ code: 2, stdout: [] });
      expect(run.stderr).toEqual(['bulkhead sandbox: --task must be a task\'s id (a uuid; bulkhead task list shows them), not "nope"']);
    }
  });

  it.runIf(process.platform === "linux" && hasNetAdmin())("is told apart from a task that has ended by the launcher", async () => {
    const config = loadIsolationConfig(dir, { BULKHEAD_ISOLATION: "off" });
    const limits = { ...config.limits, memoryBytes: null, pids: null };
    const refusal = (taskId: string) => launchSandbox(t.db, config, { kind: "system", label: "test" } as never, taskId, "", limits).then(() => null, (error: unknown) => error);

    const unknown = await refusal("00000000-0000-4000-8000-000000000000");
    expect(unknown).toBeInstanceOf(IsolationError);
    expect(unknown).toMatchObject({ code: "task_unknown", message: "no such task: 00000000-0000-4000-8000-000000000000 (bulkhead task list shows them)" });
    expect(await refusal("nope")).toMatchObject({ code: "task_unknown", message: "no such task: nope (bulkhead task list shows them)" });

    const admin = await makeUser(t.db, "admin");
    const agent = await t.db.agent.create({ data: { name: unique("ended"), ownerId: admin.user.id } });
    const task = await t.db.task.create({ data: { agentId: agent.id, purpose: "ended", policyYaml: "rules: []\n", status: "ended", expiresAt: new Date(Date.now() + 60_000) } });
    expect(await refusal(task.id)).toMatchObject({ code: "task_inactive" });
    expect(await t.db.sandbox.count()).toBe(0);
  });
});
