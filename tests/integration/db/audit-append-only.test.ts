import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordAuditEvent } from "@/lib/audit/record";
import { createTestDatabase, type TestDatabase } from "../../support/database";

describe("audit events are append-only in the database itself", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(() => t.drop());

  it("refuses UPDATE, DELETE and TRUNCATE, through Prisma and raw SQL", async () => {
    const id = await recordAuditEvent(t.db, { type: "test.event", actor: { kind: "system", label: "test" }, reason: "original" });
    await expect(t.db.auditEvent.update({ where: { id }, data: { reason: "edited" } })).rejects.toThrow(/append-only/);
    await expect(t.db.auditEvent.delete({ where: { id } })).rejects.toThrow(/append-only/);
    await expect(t.db.$executeRawUnsafe(`UPDATE audit_events SET reason = 'edited'`)).rejects.toThrow(/append-only/);
    await expect(t.db.$executeRawUnsafe(`DELETE FROM audit_events`)).rejects.toThrow(/append-only/);
    await expect(t.db.$executeRawUnsafe(`TRUNCATE audit_events`)).rejects.toThrow(/append-only/);
    expect((await t.db.auditEvent.findUniqueOrThrow({ where: { id } })).reason).toBe("original");
  });
});
