/**
 * Idempotency-Key on the admin API's writes (lib/http/idempotency.ts), through the real route
 * handlers called in-process with API keys, on the real database: a retried POST is answered
 * from the first answer instead of creating a second task, token or key.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as tasksRoute from "@/app/api/v1/tasks/route";
import * as tokensRoute from "@/app/api/v1/tasks/[id]/tokens/route";
import { createApiKey } from "@/lib/apikeys";
import type { Actor } from "@/lib/auth/actor";
import { generateMasterKey, keyFingerprint, openSecretText, parseMasterKey, sealSecret } from "@/lib/crypto/envelope";
import { idempotencyResponseAad } from "@/lib/http/idempotency-aad";
import { deriveProcessKeys } from "@/lib/keys/process-keys";
import { resealAll, resealNeeded, sealedValueCounts } from "@/lib/keys/reseal";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";
import type { RouteHandler } from "../../support/no-session";
import { callRoute, routeDatabase } from "../../support/routes";

// Requests without a session cookie; API keys and the database are real (tests/support/no-session.ts).
vi.mock("@/lib/auth/current", () => import("../../support/no-session"));

describe("Idempotency-Key on API writes", () => {
  let t: TestDatabase;
  let admin: Actor;
  let ownerId: string;
  let key: string;
  let otherKey: string;

  const call = <P,>(handler: RouteHandler<P>, path: string, init: { key: string; body?: unknown; idempotencyKey?: string }, params = {} as P) => {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (init.idempotencyKey !== undefined) headers["idempotency-key"] = init.idempotencyKey;
    return callRoute(handler, path, { method: "POST", key: init.key, body: init.body === undefined ? undefined : JSON.stringify(init.body), headers, params });
  };
  const createTask = (init: { key?: string; body: unknown; idempotencyKey?: string }) => call(tasksRoute.POST, "/api/v1/tasks", { key: init.key ?? key, ...init });
  const newAgent = async () => (await t.db.agent.create({ data: { name: unique("agent"), ownerId } })).id;
  const tasksOf = (agentId: string) => t.db.task.count({ where: { agentId } });
  const createdEvents = () => t.db.auditEvent.count({ where: { type: "task.created" } });

  beforeAll(async () => {
    t = await routeDatabase({ keys: true });
    const a = await makeUser(t.db, "admin");
    admin = a.actor;
    ownerId = a.user.id;
    key = (await createApiKey(t.db, admin, { name: "automation", role: "admin" })).key;
    otherKey = (await createApiKey(t.db, admin, { name: "other-automation", role: "admin" })).key;
  });
  afterAll(() => t.drop());

  it("creates once, and answers a retry with the same status and body, marked replayed, creating nothing", async () => {
    const agentId = await newAgent();
    const idempotencyKey = unique("retry");
    const body = { agentId, purpose: "nightly sync" };
    const events = await createdEvents();
    const first = await createTask({ body, idempotencyKey });
    expect(first.status).toBe(201);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    const firstBody = await first.text();
    const second = await createTask({ body, idempotencyKey });
    expect(second.status).toBe(201);
    expect(second.headers.get("idempotent-replayed")).toBe("true");
    expect(second.headers.get("cache-control")).toBe("no-store");
    expect(await second.text()).toBe(firstBody);
    expect(await tasksOf(agentId)).toBe(1);
    expect(await createdEvents()).toBe(events + 1);
    // Without the header nothing changes: each request creates.
    await createTask({ body });
    await createTask({ body });
    expect(await tasksOf(agentId)).toBe(3);
  });

  it("refuses the same key for a different request with 422, creating nothing", async () => {
    const agentId = await newAgent();
    const idempotencyKey = unique("reused");
    expect((await createTask({ body: { agentId, purpose: "first purpose" }, idempotencyKey })).status).toBe(201);
    const events = await createdEvents();
    const other = await createTask({ body: { agentId, purpose: "another purpose" }, idempotencyKey });
    expect(other.status).toBe(422);
    expect(await other.json()).toMatchObject({ error: "idempotency_key_reused", message: expect.stringMatching(/different request/) });
    expect(await tasksOf(agentId)).toBe(1);
    expect(await createdEvents()).toBe(events);
  });

  it("runs two concurrent requests with one key once: the other replays or gets 409 with Retry-After", async () => {
    const agentId = await newAgent();
    const idempotencyKey = unique("concurrent");
    const body = { agentId, purpose: "raced" };
    const answers = await Promise.all([createTask({ body, idempotencyKey }), createTask({ body, idempotencyKey })]);
    expect(await tasksOf(agentId)).toBe(1);
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses[0]).toBe(201);
    const other = answers.find((a) => a.status !== 201 || a.headers.get("idempotent-replayed") === "true");
    expect(other).toBeDefined();
    if (other!.status === 409) {
      expect(other!.headers.get("retry-after")).toBe("1");
      expect(await other!.json()).toMatchObject({ error: "idempotency_key_in_progress" });
    } else {
      expect(other!.status).toBe(201);
      expect(other!.headers.get("idempotent-replayed")).toBe("true");
    }
  });

  it("keeps keys apart per principal: two API keys with the same idempotency key each create", async () => {
    const agentId = await newAgent();
    const idempotencyKey = unique("shared");
    const body = { agentId, purpose: "per principal" };
    const mine = await createTask({ body, idempotencyKey });
    const theirs = await createTask({ key: otherKey, body, idempotencyKey });
    expect([mine.status, theirs.status]).toEqual([201, 201]);
    expect(theirs.headers.get("idempotent-replayed")).toBeNull();
    expect(await tasksOf(agentId)).toBe(2);
    // Each principal's retry gets its own first answer back.
    const ids = async (res: Response) => ((await res.json()) as { task: { id: string } }).task.id;
    const [mineId, theirsId] = [await ids(mine), await ids(theirs)];
    expect(mineId).not.toBe(theirsId);
    const mineAgain = await createTask({ body, idempotencyKey });
    const theirsAgain = await createTask({ key: otherKey, body, idempotencyKey });
    expect([mineAgain.headers.get("idempotent-replayed"), theirsAgain.headers.get("idempotent-replayed")]).toEqual(["true", "true"]);
    expect([await ids(mineAgain), await ids(theirsAgain)]).toEqual([mineId, theirsId]);
    expect(await tasksOf(agentId)).toBe(2);
  });

  it("refuses a malformed key with 400 naming the header, running nothing", async () => {
    const agentId = await newAgent();
    const events = await createdEvents();
    for (const idempotencyKey of ["", "has space", "x".repeat(256), "caf\u00e9", "tab\tinside"]) {
      const res = await createTask({ body: { agentId, purpose: "never" }, idempotencyKey });
      expect(res.status, JSON.stringify(idempotencyKey)).toBe(400);
      expect(await res.json()).toMatchObject({ error: "invalid_input", issues: [{ path: "Idempotency-Key", message: expect.any(String) }] });
    }
    expect((await createTask({ body: { agentId, purpose: "longest key" }, idempotencyKey: "~".repeat(255) })).status).toBe(201);
    expect(await tasksOf(agentId)).toBe(1);
    expect(await createdEvents()).toBe(events + 1);
    expect(await t.db.idempotencyKey.count({ where: { key: { in: ["", "has space"] } } })).toBe(0);
  });

  it("replays a deterministic refusal (an invalid policy) instead of running it again", async () => {
    const agentId = await newAgent();
    const idempotencyKey = unique("invalid");
    const body = { agentId, purpose: "bad policy", policyYaml: "rules: [this is: not: a policy" };
    const first = await createTask({ body, idempotencyKey });
    expect(first.status).toBe(400);
    const text = await first.text();
    const again = await createTask({ body, idempotencyKey });
    expect(again.status).toBe(400);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(await again.text()).toBe(text);
    expect(await tasksOf(agentId)).toBe(0);
  });

  it("keeps no answer that says nothing about the request: after a 500 (a database fault) the retry runs", async () => {
    const agentId = await newAgent();
    const idempotencyKey = unique("fault");
    const body = { agentId, purpose: "database fault once" };
    const fault = `fail_task_insert_${randomUUID().replace(/-/g, "")}`;
    // A real fault in the database while the write runs: the insert of this task raises.
    await t.adminDb().$executeRawUnsafe(`CREATE FUNCTION ${fault}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.purpose = 'database fault once' THEN RAISE EXCEPTION 'disk on fire'; END IF; RETURN NEW; END $$`);
    await t.adminDb().$executeRawUnsafe(`CREATE TRIGGER ${fault} BEFORE INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION ${fault}()`);
    let failed: Response;
    try {
      failed = await createTask({ body, idempotencyKey });
    } finally {
      await t.adminDb().$executeRawUnsafe(`DROP TRIGGER ${fault} ON tasks`);
      await t.adminDb().$executeRawUnsafe(`DROP FUNCTION ${fault}()`);
    }
    expect(failed.status).toBe(500);
    expect(await failed.text()).not.toContain("disk on fire"); // the database's words stay in the log
    expect(await t.db.idempotencyKey.count({ where: { key: idempotencyKey } })).toBe(0);
    expect(await tasksOf(agentId)).toBe(0);
    const retry = await createTask({ body, idempotencyKey });
    expect(retry.status).toBe(201);
    expect(retry.headers.get("idempotent-replayed")).toBeNull();
    expect(await tasksOf(agentId)).toBe(1);
    const replay = await createTask({ body, idempotencyKey });
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(await replay.text()).toBe(await retry.text());
    expect(await tasksOf(agentId)).toBe(1);
  });

  it("mints one task token for a retried POST, and stores it sealed, never in clear", async () => {
    const agentId = await newAgent();
    const task = JSON.parse(await (await createTask({ body: { agentId, purpose: "token holder" } })).text()) as { task: { id: string } };
    const idempotencyKey = unique("token");
    const path = `/api/v1/tasks/${task.task.id}/tokens`;
    const first = await call(tokensRoute.POST, path, { key, idempotencyKey }, { id: task.task.id });
    expect(first.status).toBe(201);
    const { token } = (await first.json()) as { token: string };
    const again = await call(tokensRoute.POST, path, { key, idempotencyKey }, { id: task.task.id });
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(((await again.json()) as { token: string }).token).toBe(token);
    expect(await t.db.issuedToken.count({ where: { taskId: task.task.id } })).toBe(1);
    const rows = await t.adminDb().$queryRawUnsafe<Array<Record<string, unknown>>>("SELECT * FROM idempotency_keys WHERE key = $1", idempotencyKey);
    expect(rows).toHaveLength(1);
    const raw = JSON.stringify(rows[0]);
    expect(raw).not.toContain(token);
    for (const part of token.split(".")) expect(raw).not.toContain(part);
    expect(rows[0]!.response_sealed).toMatch(/^v1\./);
  });

  it("never replays an answer past 24 hours: the key runs afresh", async () => {
    const agentId = await newAgent();
    const idempotencyKey = unique("expired");
    const body = { agentId, purpose: "yesterday" };
    expect((await createTask({ body, idempotencyKey })).status).toBe(201);
    expect((await createTask({ body, idempotencyKey })).headers.get("idempotent-replayed")).toBe("true");
    expect(await tasksOf(agentId)).toBe(1);
    await t.adminDb().$executeRawUnsafe("UPDATE idempotency_keys SET created_at = created_at - interval '25 hours' WHERE key = $1", idempotencyKey);
    const later = await createTask({ body, idempotencyKey });
    expect(later.status).toBe(201);
    expect(later.headers.get("idempotent-replayed")).toBeNull();
    expect(await tasksOf(agentId)).toBe(2);
    // And expired claims of others are swept as new keys are claimed.
    const stale = unique("stale");
    await createTask({ body: { agentId, purpose: "to sweep" }, idempotencyKey: stale });
    await t.adminDb().$executeRawUnsafe("UPDATE idempotency_keys SET created_at = created_at - interval '25 hours' WHERE key = $1", stale);
    await createTask({ body: { agentId, purpose: "sweeps" }, idempotencyKey: unique("sweeper") });
    expect(await t.db.idempotencyKey.count({ where: { key: stale } })).toBe(0);
  });

  it("takes over a claim left running for more than five minutes (a crashed process)", async () => {
    const agentId = await newAgent();
    const idempotencyKey = unique("crashed");
    const body = { agentId, purpose: "after a crash" };
    // The first attempt's process died before it finished: its claim is still running.
    const first = await createTask({ body, idempotencyKey });
    await t.adminDb().$executeRawUnsafe("UPDATE idempotency_keys SET status_code = NULL, response_sealed = NULL, completed_at = NULL WHERE key = $1", idempotencyKey);
    const busy = await createTask({ body, idempotencyKey });
    expect(busy.status).toBe(409);
    expect(busy.headers.get("retry-after")).toBe("1");
    await t.adminDb().$executeRawUnsafe("UPDATE idempotency_keys SET claimed_at = claimed_at - interval '6 minutes' WHERE key = $1", idempotencyKey);
    const taken = await createTask({ body, idempotencyKey });
    expect(taken.status).toBe(201);
    expect(taken.headers.get("idempotent-replayed")).toBeNull();
    expect(first.status).toBe(201);
    expect(await tasksOf(agentId)).toBe(2);
    const replay = await createTask({ body, idempotencyKey });
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(await replay.text()).toBe(await taken.text());
  });
});

describe("stored idempotent answers under a master-key rotation", () => {
  it("are resealed with the other values the dashboard key seals; claims still running (no answer yet) are skipped", async () => {
    const d = await createTestDatabase();
    try {
      const old = deriveProcessKeys(parseMasterKey(generateMasterKey()));
      const next = deriveProcessKeys(parseMasterKey(generateMasterKey()));
      const plan = { to: next, from: [old], legacyMasters: [] };
      const id = randomUUID();
      const body = '{"token":"secret-once"}';
      await d.db.$executeRawUnsafe(
        "INSERT INTO idempotency_keys (id, principal, key, fingerprint, claim, status_code, response_sealed, completed_at) VALUES ($1::uuid, 'api_key:a', 'done', 'f', gen_random_uuid(), 201, $2, now())",
        id,
        sealSecret(body, old.dashboardKey, idempotencyResponseAad(id)),
      );
      await d.db.$executeRawUnsafe("INSERT INTO idempotency_keys (principal, key, fingerprint, claim) VALUES ('api_key:a', 'running', 'f', gen_random_uuid())");
      expect(await resealNeeded(d.db, plan)).toBe(true);
      expect((await resealAll(d.db, plan)).resealed).toEqual({ "idempotent response": 1 });
      const [row] = await d.db.$queryRawUnsafe<Array<{ response_sealed: string }>>("SELECT response_sealed FROM idempotency_keys WHERE id = $1::uuid", id);
      expect(openSecretText(row!.response_sealed, next.dashboardKey, idempotencyResponseAad(id))).toBe(body);
      expect(await resealNeeded(d.db, plan)).toBe(false);
      expect(await sealedValueCounts(d.db)).toEqual([{ label: "idempotent response", fingerprint: keyFingerprint(next.dashboardKey), count: 1 }]);
    } finally {
      await d.drop();
    }
  });
});
