import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as exportRoute from "@/app/api/v1/audit/export/route";
import { createApiKey, revokeApiKey } from "@/lib/apikeys";
import type { Actor } from "@/lib/auth/actor";
import { createSession, deleteSession, resolveSession } from "@/lib/auth/sessions";
import { runningExports, startAuditExport } from "@/lib/audit/export";
import { setUserDisabled, setUserRole } from "@/lib/users/users";
import { insertEvents, proxyDecisions } from "../../support/audit-events";
import type { TestDatabase } from "../../support/database";
import { makeUser } from "../../support/factories";
import { callRoute, routeDatabase } from "../../support/routes";
import { makeFleet } from "./fleet";

// Requests without a session cookie; API keys and the database are real (tests/support/no-session.ts).
vi.mock("@/lib/auth/current", () => import("../../support/no-session"));

const EVENTS = 2_500;

/**
 * An export runs as slowly as its receiver reads, so whoever holds a leaked API key or a stolen
 * session can start one and keep it flowing long after the key is revoked, the session signed
 * out or the person disabled. Before, it ran to the end of the log; now it stops at the next
 * batch, as the live approval stream does, and the audit says why.
 */
describe("an audit export ends with the credentials it runs with", () => {
  let t: TestDatabase;
  let pool: pg.Pool;
  let admin: Actor;

  beforeAll(async () => {
    t = await routeDatabase();
    pool = new pg.Pool({ connectionString: t.url, max: 2 });
    const owner = await makeUser(t.db, "admin");
    admin = owner.actor;
    await makeUser(t.db, "admin"); // so the owner is not the last admin
    const fleet = await makeFleet(t.db, owner.user.id, 2, 1);
    await insertEvents(pool, proxyDecisions(fleet, EVENTS, { seed: 11 }));
  }, 120_000);
  afterAll(async () => {
    await pool.end();
    await t.drop();
  });

  const lastExport = async () => (await t.db.auditEvent.findFirstOrThrow({ where: { type: "audit.exported" }, orderBy: { seq: "desc" } })).data;

  it("over the API: revoking the key mid-download breaks the response off, it does not complete", async () => {
    const { apiKey, key } = await createApiKey(t.db, admin, { name: "leaked", role: "auditor" });
    const res = await callRoute(exportRoute.GET, "/api/v1/audit/export?format=jsonl", { key });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(first.done).toBe(false);
    await revokeApiKey(t.db, admin, apiKey.id);
    let rows = new TextDecoder().decode(first.value).split("\n").length - 1;
    const rest = (async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return "completed";
        rows += new TextDecoder().decode(value).split("\n").length - 1;
      }
    })();
    await expect(rest).rejects.toThrow();
    expect(rows).toBeLessThan(EVENTS);
    expect(await lastExport()).toMatchObject({ status: "failed", error: "refused: unauthenticated" });
    expect(runningExports()).toBe(0);
  });

  const cases: Array<[string, (user: { id: string }, sessionToken: string) => Promise<unknown>]> = [
    ["the session is signed out", (_user, token) => deleteSession(t.db, token)],
    ["the user is disabled", (user) => setUserDisabled(t.db, admin, user.id, true)],
    ["the user's role is changed", (user) => setUserRole(t.db, admin, user.id, "approver")],
  ];
  for (const [what, end] of cases) {
    it(`stops at the next batch when ${what}`, async () => {
      const { user } = await makeUser(t.db, "auditor");
      const token = await createSession(t.db, user.id, 3600);
      const session = (await resolveSession(t.db, token))!;
      const actor: Actor = { kind: "user", userId: user.id, email: user.email, role: "auditor", sessionId: session.sessionId, authenticatedAt: session.authenticatedAt };
      const exp = await startAuditExport(t.db, actor, { format: "csv" }, { via: "api", batchSize: 100 });
      await exp.chunks.next(); // header
      await exp.chunks.next(); // the first 100
      await end(user, token);
      await expect(exp.chunks.next()).rejects.toMatchObject({ code: "UNAUTHENTICATED" });
      expect(await lastExport()).toMatchObject({ status: "failed", rows: 100, error: "refused: unauthenticated" });
      expect(runningExports()).toBe(0);
    });
  }

  it("an export whose credentials stand runs to the end", async () => {
    const { actor } = await makeUser(t.db, "auditor");
    const exp = await startAuditExport(t.db, actor, { format: "jsonl" }, { via: "api", batchSize: 500 });
    let rows = 0;
    for await (const chunk of exp.chunks) rows += chunk.split("\n").length - 1;
    expect(rows).toBe(await t.db.auditEvent.count({ where: { seq: { lte: BigInt(exp.throughSeq) } } }));
    expect(await lastExport()).toMatchObject({ status: "completed" });
  });
});
