import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as listRoute from "@/app/api/v1/audit/route";
import * as eventRoute from "@/app/api/v1/audit/[seq]/route";
import * as exportRoute from "@/app/api/v1/audit/export/route";
import { createApiKey, revokeApiKey } from "@/lib/apikeys";
import type { Actor } from "@/lib/auth/actor";
import { chainStatus } from "@/lib/audit/chain-status";
import { checkpointVerificationKey, writeCheckpoint } from "@/lib/audit/checkpoints";
import { getAuditEvent } from "@/lib/audit/query";
import { insertEvents, proxyDecisions } from "../../support/audit-events";
import type { TestDatabase } from "../../support/database";
import { makeUser } from "../../support/factories";
import { makeFleet } from "./fleet";
import { tamper } from "./helpers";
import type { RouteHandler } from "../../support/no-session";
import { callRoute, routeDatabase } from "../../support/routes";

// Requests without a session cookie; API keys and the database are real (tests/support/no-session.ts).
vi.mock("@/lib/auth/current", () => import("../../support/no-session"));

describe("the audit API: roles, pages, one event with its chain, exports", () => {
  let t: TestDatabase;
  let pool: pg.Pool;
  let admin: Actor;
  const keys: Record<string, string> = {};
  const checkpointKey = Buffer.alloc(32, 7);

  const call = <P,>(handler: RouteHandler<P>, path: string, key?: string, params = {} as P) =>
    callRoute(handler, path, { key, params });

  beforeAll(async () => {
    t = await routeDatabase();
    pool = new pg.Pool({ connectionString: t.url, max: 2 });
    const a = await makeUser(t.db, "admin");
    admin = a.actor;
    for (const role of ["admin", "approver", "auditor"] as const) keys[role] = (await createApiKey(t.db, admin, { name: `audit-${role}`, role })).key;
    const fleet = await makeFleet(t.db, a.user.id, 2, 2);
    await insertEvents(pool, proxyDecisions(fleet, 120, { seed: 11 }));
  });
  afterAll(async () => {
    await pool.end();
    await t.drop();
  });

  it("lets every role read and export (read is every role's permission), and nobody without a live key", async () => {
    for (const role of ["admin", "approver", "auditor"]) {
      const list = await call(listRoute.GET, "/api/v1/audit?limit=5&outcome=deny", keys[role]);
      expect(list.status, role).toBe(200);
      const body = (await list.json()) as { events: Array<{ seq: string; outcome: string }>; nextCursor: string; chain: { state: string } };
      expect(body.events).toHaveLength(5);
      expect(body.events.every((e) => e.outcome === "deny")).toBe(true);
      expect(["verified", "pending"]).toContain(body.chain.state);
      const one = await call(eventRoute.GET, `/api/v1/audit/${body.events[0]!.seq}`, keys[role], { seq: body.events[0]!.seq });
      expect(one.status, role).toBe(200);
      const csv = await call(exportRoute.GET, "/api/v1/audit/export?format=csv&outcome=deny", keys[role]);
      expect(csv.status, role).toBe(200);
      expect(csv.headers.get("content-type")).toBe("text/csv; charset=utf-8; header=present");
      expect(csv.headers.get("content-disposition")).toMatch(/^attachment; filename="bulkhead-audit-\d{8}T\d{6}Z\.csv"$/);
      expect((await csv.text()).split("\r\n").length).toBeGreaterThan(2);
    }
    for (const [handler, path] of [
      [listRoute.GET, "/api/v1/audit"],
      [exportRoute.GET, "/api/v1/audit/export"],
    ] as const) {
      expect((await call(handler, path)).status).toBe(401);
      expect((await call(handler, path, "bk_forged_key")).status).toBe(401);
    }
    const { apiKey, key } = await createApiKey(t.db, admin, { name: "gone", role: "auditor" });
    await revokeApiKey(t.db, admin, apiKey.id);
    expect((await call(exportRoute.GET, "/api/v1/audit/export", key)).status).toBe(401);
    expect((await call(eventRoute.GET, "/api/v1/audit/1", key, { seq: "1" })).status).toBe(401);
  });

  it("answers bad input with 400 and a sentence before any export starts; unknown events with 404", async () => {
    const before = await t.db.auditEvent.count({ where: { type: "audit.export_started" } });
    for (const q of ["format=xml", "q=ab", "from=soon", "task=1;DROP", "effect=nuclear", "cursor=-1"]) {
      const res = await call(q.startsWith("cursor") ? listRoute.GET : exportRoute.GET, `/api/v1/audit${q.startsWith("cursor") ? "" : "/export"}?${q}`, keys.auditor);
      expect(res.status, q).toBe(400);
      expect(((await res.json()) as { error: string }).error).toBe("invalid_input");
    }
    expect(await t.db.auditEvent.count({ where: { type: "audit.export_started" } })).toBe(before);
    for (const seq of ["999999999", "0", "abc", "1e3", "-1"]) {
      expect((await call(eventRoute.GET, `/api/v1/audit/${seq}`, keys.auditor, { seq })).status, seq).toBe(404);
    }
  });

  it("pages with nextCursor / prevCursor as documented", async () => {
    const first = (await (await call(listRoute.GET, "/api/v1/audit?limit=7&type=proxy.*", keys.auditor)).json()) as { events: Array<{ seq: string }>; nextCursor: string; prevCursor: string | null };
    const second = (await (await call(listRoute.GET, `/api/v1/audit?limit=7&type=proxy.*&cursor=${first.nextCursor}`, keys.auditor)).json()) as { events: Array<{ seq: string }>; prevCursor: string };
    expect(first.prevCursor).toBeNull();
    expect(BigInt(second.events[0]!.seq)).toBeLessThan(BigInt(first.events[6]!.seq));
    const back = (await (await call(listRoute.GET, `/api/v1/audit?limit=7&type=proxy.*&after=${second.prevCursor}`, keys.auditor)).json()) as { events: Array<{ seq: string }> };
    expect(back.events.map((e) => e.seq)).toEqual(first.events.map((e) => e.seq));
  });

  it("a client that disconnects mid-download cancels the export and leaves nothing open", async () => {
    const res = await call(exportRoute.GET, "/api/v1/audit/export?format=jsonl", keys.auditor);
    const reader = res.body!.getReader();
    const { value } = await reader.read();
    expect(value!.byteLength).toBeGreaterThan(0);
    await reader.cancel();
    await expect
      .poll(async () => (await t.db.auditEvent.findFirst({ where: { type: "audit.exported" }, orderBy: { seq: "desc" } }))?.data)
      .toMatchObject({ status: "cancelled", via: "api" });
    const open = await pool.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'");
    expect(open.rows[0].n).toBe(0);
  });

  it("shows one event's place in the chain: hashes recomputed, the covering checkpoint and its signature", async () => {
    const auditor = (await makeUser(t.db, "auditor")).actor;
    const [{ seq }] = (await pool.query<{ seq: string }>("SELECT seq::text AS seq FROM audit_events WHERE type = 'proxy.decision' ORDER BY seq LIMIT 1 OFFSET 10")).rows as [{ seq: string }];
    const trusted = [checkpointVerificationKey(checkpointKey)];
    let detail = await getAuditEvent(t.db, auditor, seq, { via: "api", checkpointKeys: trusted });
    expect(detail.chain).toMatchObject({ seq, hashMatches: true, linksToPrevious: true, checkpoint: null });
    expect(detail.event.actions).toHaveLength(1);
    expect(detail.neighbours).toEqual({ older: String(BigInt(seq) - 1n), newer: String(BigInt(seq) + 1n) });
    const cp = await writeCheckpoint(t.db, checkpointKey);
    detail = await getAuditEvent(t.db, auditor, seq, { via: "api", checkpointKeys: trusted });
    expect(detail.chain.checkpoint).toMatchObject({ id: cp!.id.toString(), seq: cp!.seq.toString(), matchesChain: true, signatureValid: true });
    expect((await getAuditEvent(t.db, auditor, seq, { via: "api", checkpointKeys: null })).chain.checkpoint?.signatureValid).toBeNull();
    expect((await getAuditEvent(t.db, auditor, seq, { via: "api", checkpointKeys: [checkpointVerificationKey(Buffer.alloc(32, 8))] })).chain.checkpoint?.signatureValid).toBe(false);
    const viewed = await t.db.auditEvent.findFirst({ where: { type: "audit.event_viewed", actorId: (auditor as { userId: string }).userId }, orderBy: { seq: "desc" } });
    expect(viewed!.data).toEqual({ via: "api", seq });
  });

  it("the chain's status: verified up to the newest event, extended as events arrive, and the first broken event once one is edited", async () => {
    const status = await chainStatus(t.db, { checkpointKeys: [checkpointVerificationKey(checkpointKey)], force: true, waitMs: 60_000 });
    const head = (await pool.query<{ seq: string }>("SELECT max(seq)::text AS seq FROM audit_events")).rows[0]!.seq;
    expect(status).toMatchObject({ state: "verified", verifiedThroughSeq: head, broken: null, signaturesChecked: true });
    await insertEvents(pool, proxyDecisions({ agents: [], tasks: [{ id: "00000000-0000-4000-8000-0000000000aa", agentId: "00000000-0000-4000-8000-0000000000bb" }] }, 5, { seed: 5 }));
    const later = await chainStatus(t.db, { checkpointKeys: [checkpointVerificationKey(checkpointKey)], force: true, waitMs: 60_000 });
    expect(BigInt(later.verifiedThroughSeq!)).toBe(BigInt(head) + 5n);
    // The table owner edits an old event: found, named, and shown until it is fixed.
    const victim = 20n;
    await tamper(t.adminUrl, "UPDATE audit_events SET reason = 'nothing to see' WHERE seq = $1", [victim.toString()]);
    const broken = await chainStatus(t.db, { checkpointKeys: [checkpointVerificationKey(checkpointKey)], force: true, waitMs: 60_000 });
    expect(broken).toMatchObject({ state: "broken", broken: { firstBadSeq: victim.toString(), problem: "edited" }, verifiedThroughSeq: (victim - 1n).toString() });
    const auditor = (await makeUser(t.db, "auditor")).actor;
    expect((await getAuditEvent(t.db, auditor, victim.toString(), { via: "api" })).chain.hashMatches).toBe(false);
  });
});
