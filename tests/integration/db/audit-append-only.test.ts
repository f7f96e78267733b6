import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordAuditEvent } from "@/lib/audit/record";
import { createPrismaClient, type Db } from "@/lib/db/client";
import { createTestDatabase, type TestDatabase } from "../../support/database";

/**
 * The triggers refuse even the tables' owner (the role migrations run as), which holds every
 * privilege on them; the runtime roles do not even get that far (database-roles.test.ts).
 */
describe("audit events are append-only in the database itself", () => {
  let t: TestDatabase;
  let owner: Db;
  beforeAll(async () => {
    t = await createTestDatabase();
    owner = createPrismaClient(t.ownerUrl, 1);
  });
  afterAll(async () => {
    await owner.$disconnect();
    await t.drop();
  });

  it("refuses UPDATE, DELETE and TRUNCATE, through Prisma and raw SQL", async () => {
    const id = await recordAuditEvent(t.db, { type: "test.event", actor: { kind: "system", label: "test" }, reason: "original" });
    await expect(owner.auditEvent.update({ where: { id }, data: { reason: "edited" } })).rejects.toThrow(/append-only/);
    await expect(owner.auditEvent.delete({ where: { id } })).rejects.toThrow(/append-only/);
    await expect(owner.$executeRawUnsafe(`UPDATE audit_events SET reason = 'edited'`)).rejects.toThrow(/append-only/);
    await expect(owner.$executeRawUnsafe(`DELETE FROM audit_events`)).rejects.toThrow(/append-only/);
    await expect(owner.$executeRawUnsafe(`TRUNCATE audit_events`)).rejects.toThrow(/append-only/);
    expect((await t.db.auditEvent.findUniqueOrThrow({ where: { id } })).reason).toBe("original");
  });
});
