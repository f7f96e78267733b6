import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Actor } from "@/lib/auth/actor";
import { isAppError } from "@/lib/errors/app-error";
import { getInventoryYaml, setInventoryYaml } from "@/lib/services/inventory";
import { updateTaskPolicy } from "@/lib/tasks/policy";
import { createTask } from "@/lib/tasks/tasks";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";

/**
 * Two people editing the same policy or inventory from pages opened at the same version: the
 * second save used to replace the first without a word, a deny rule the first added included.
 * A save names what it started from; a save over a newer one is refused and changes nothing.
 */
describe("concurrent edits", () => {
  let t: TestDatabase;
  let admin: Actor;
  let agentId: string;

  beforeAll(async () => {
    t = await createTestDatabase();
    admin = (await makeUser(t.db, "admin")).actor;
    agentId = (await t.db.agent.create({ data: { name: unique("agent"), ownerId: (admin as { userId: string }).userId } })).id;
  });
  afterAll(() => t.drop());

  const conflict = (e: unknown) => isAppError(e) && e.code === "CONFLICT";

  it("refuses a policy saved over a version its editor never saw, and keeps the other's deny rule", async () => {
    const task = await createTask(t.db, admin, { agentId, purpose: "two editors", policyYaml: "rules:\n  - service: github\n    effects: [read]\n" });
    const opened = (await t.db.task.findUniqueOrThrow({ where: { id: task.id } })).policyVersion;
    const withDeny = "rules:\n  - service: github\n    operations: [delete_repo]\n    decision: deny\n  - service: github\n    effects: [read]\n";
    const first = await updateTaskPolicy(t.db, admin, task.id, withDeny, opened);
    expect(first.policyVersion).toBe(opened + 1);
    const stale = await updateTaskPolicy(t.db, admin, task.id, "rules:\n  - service: github\n    effects: [read]\n# a comment\n", opened).then(() => null, (e: unknown) => e);
    expect(conflict(stale), String(stale)).toBe(true);
    expect(String((stale as Error).message)).toMatch(/changed since you opened it/);
    const now = await t.db.task.findUniqueOrThrow({ where: { id: task.id } });
    expect([now.policyVersion, now.policyYaml]).toEqual([opened + 1, withDeny]);
    // Saved from the version in force, it goes through; without a base (the API, the CLI) as before.
    await expect(updateTaskPolicy(t.db, admin, task.id, withDeny, opened + 1)).resolves.toMatchObject({ policyVersion: opened + 2 });
    await expect(updateTaskPolicy(t.db, admin, task.id, withDeny)).resolves.toMatchObject({ policyVersion: opened + 3 });
  });

  it("refuses an inventory saved over one changed since its editor opened it", async () => {
    const opened = await getInventoryYaml(t.db);
    const mine = `entries:\n  - environment: staging\n    resources: ["${unique("vol")}"]\n`;
    await setInventoryYaml(t.db, admin, mine, opened);
    const stale = await setInventoryYaml(t.db, admin, `entries:\n  - environment: development\n    resources: ["${unique("vol")}"]\n`, opened).then(() => null, (e: unknown) => e);
    expect(conflict(stale), String(stale)).toBe(true);
    expect(await getInventoryYaml(t.db)).toBe(mine);
    // Line endings as a browser sends them (CRLF) are the same text.
    await expect(setInventoryYaml(t.db, admin, mine, mine.replace(/\n/g, "\r\n"))).resolves.toBeUndefined();
  });
});
