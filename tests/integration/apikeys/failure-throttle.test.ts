import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as meRoute from "@/app/api/v1/me/route";
import { createApiKey } from "@/lib/apikeys";
import { apiKeyThrottle } from "@/lib/apikeys/failure-throttle";
import { loadAppConfig } from "@/lib/config/app";
import { getDb } from "@/lib/db/client";
import { PEER_HEADER } from "@/lib/http/client-address";
import type { TestDatabase } from "../../support/database";
import { makeUser } from "../../support/factories";
import { callRoute, routeDatabase } from "../../support/routes";

// Requests without a session cookie; API keys and the database are real (tests/support/no-session.ts).
vi.mock("@/lib/auth/current", () => import("../../support/no-session"));

const PEER_TOKEN = "throttle-test-peer-token";
const LIMIT = 5;

/**
 * An unauthenticated client hammering the API with Bearer values: malformed ones, unknown
 * prefixes, a real key's prefix with a wrong secret. Before, every one was a 401 without end, and
 * the first two kinds left no trace in the audit. Now an address is locked after LIMIT failures:
 * its failures are 429 with Retry-After, one audit event per lock, one summary of what was
 * refused meanwhile; a valid key from the same address still works (a shared address's bad
 * values must not lock its legitimate clients out).
 */
describe("failed API key authentications are limited per client address", () => {
  let t: TestDatabase;
  let valid: string;
  let realPrefix: string;

  const me = (key: string, address: string) =>
    callRoute(meRoute.GET, "/api/v1/me", { key, headers: { [PEER_HEADER]: `${PEER_TOKEN};${address}` } });

  beforeAll(async () => {
    t = await routeDatabase();
    process.env.BULKHEAD_INTERNAL_PEER_TOKEN = PEER_TOKEN;
    process.env.BULKHEAD_API_KEY_ADDRESS_FAILURES = String(LIMIT);
    const admin = (await makeUser(t.db, "admin")).actor;
    valid = (await createApiKey(t.db, admin, { name: "throttle-valid", role: "auditor" })).key;
    realPrefix = valid.split("_")[1]!;
  });
  afterAll(async () => {
    apiKeyThrottle(getDb(), loadAppConfig().apiKeyThrottle).stop();
    delete process.env.BULKHEAD_INTERNAL_PEER_TOKEN;
    delete process.env.BULKHEAD_API_KEY_ADDRESS_FAILURES;
    await t.drop();
  });

  it("locks an address after the limit, answers its failures 429 with Retry-After, still lets a valid key through, and records the lock once", async () => {
    const attacker = "198.51.100.7";
    const guesses = ["not-a-key", `bk_zzzzzzzz_${"A".repeat(43)}`, `bk_${realPrefix}_${"B".repeat(43)}`, "bk_x"];
    expect(guesses).toHaveLength(LIMIT - 1);
    for (const guess of guesses) expect((await me(guess, attacker)).status, guess).toBe(401);
    // The failure that reaches the limit is already told to wait.
    const limited = await me(`bk_qqqqqqqq_${"C".repeat(43)}`, attacker);
    expect(limited.status).toBe(429);
    const retryAfter = Number(limited.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(await limited.json()).toMatchObject({ error: "rate_limited", details: { retryAfterSeconds: retryAfter } });
    const again = await me("bk_x", attacker);
    expect(again.status).toBe(429);
    expect(Number(again.headers.get("retry-after"))).toBeGreaterThan(0);

    // A valid key from the locked address, and from another one.
    expect((await me(valid, attacker)).status).toBe(200);
    expect((await me(valid, "203.0.113.9")).status).toBe(200);

    const locks = await t.db.auditEvent.findMany({ where: { type: "api_key.auth_throttled" } });
    expect(locks).toHaveLength(1);
    expect(locks[0]!.data).toMatchObject({ address: attacker, failures: LIMIT });
  });

  it("costs a locked address no audit insert per attempt: the refusals are reported once, when the lock has ended", async () => {
    const attacker = "198.51.100.7";
    const before = await t.db.auditEvent.count();
    for (let i = 0; i < 50; i++) expect((await me(`bk_${realPrefix}_${"D".repeat(43)}`, attacker)).status).toBe(429);
    expect(await t.db.auditEvent.count()).toBe(before);

    await apiKeyThrottle(getDb(), loadAppConfig().apiKeyThrottle).flush(Date.now() + 2 * 60_000);
    const summary = await t.db.auditEvent.findFirstOrThrow({ where: { type: "api_key.auth_throttle_summarised" } });
    // The 50 here and the one refused after the lock in the test before.
    expect(summary.data).toMatchObject({ refusedWhileThrottled: 51, addresses: [{ address: attacker, refused: 51 }] });
  });

  it("counts an IPv6 client by its /64, so rotating addresses inside it does not escape", async () => {
    for (let i = 1; i < LIMIT; i++) expect((await me("bk_nope", `2001:db8:1:2::${i.toString(16)}`)).status).toBe(401);
    expect((await me("bk_nope", "2001:db8:1:2:ffff::1")).status).toBe(429);
    expect((await me("bk_nope", "2001:db8:1:2:abcd::2")).status).toBe(429);
    expect((await me("bk_nope", "2001:db8:1:3::1")).status).toBe(401);
  });
});
