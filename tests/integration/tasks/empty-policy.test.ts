import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Actor } from "@/lib/auth/actor";
import { isAppError } from "@/lib/errors/app-error";
import { createTask } from "@/lib/tasks/tasks";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";

/**
 * A blank policy (the new-task form's textarea emptied) created a task that may do nothing for
 * ever: its scope, fixed at creation, came out as none. It is refused with a sentence, and
 * nothing is created; a policy left out (the API, the CLI without --policy) is still deny-all.
 */
describe("a task's policy left blank", () => {
  let t: TestDatabase;
  let admin: Actor;
  let agentId: string;

  beforeAll(async () => {
    t = await createTestDatabase();
    admin = (await makeUser(t.db, "admin")).actor;
    agentId = (await t.db.agent.create({ data: { name: unique("agent"), ownerId: (admin as { userId: string }).userId } })).id;
  });
  afterAll(() => t.drop());

  it("is refused, naming the field, and nothing is created", async () => {
    const before = await t.db.task.count();
    for (const policyYaml of ["", "  \n\t\n"]) {
      const refused = await createTask(t.db, admin, { agentId, purpose: "blank", policyYaml }).then(() => null, (e: unknown) => e);
      expect(isAppError(refused) && refused.code, String(refused)).toBe("INVALID_INPUT");
      const fields = (refused as { details?: { fieldErrors?: Record<string, string[]> } }).details?.fieldErrors;
      expect(fields?.policyYaml?.join(" ")).toMatch(/policy is empty/);
    }
    expect(await t.db.task.count()).toBe(before);
  });

  it("left out, is deny-all as before", async () => {
    const task = await createTask(t.db, admin, { agentId, purpose: "none given" });
    expect((await t.db.task.findUniqueOrThrow({ where: { id: task.id } })).policyYaml).toMatch(/unlisted: deny/);
  });
});
