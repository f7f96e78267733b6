/**
 * Tokens that carry a genuine signature but the wrong claims (a buggy issuer path, a token for
 * another deployment, an old token): each is refused with its own reason.
 */
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { verifyTaskToken } from "@/lib/identity/token";
import { AGENT, AUDIENCE, expectReason, makeFixture, NOW, NOW_S, TASK, type Fixture } from "./helpers";

let f: Fixture;

beforeAll(async () => {
  f = await makeFixture();
});

beforeEach(() => {
  f.revocation.replaceAll({ revokedTasks: [], suspendedAgents: [], revokedJtis: [] });
});

const at = (offsetSeconds: number) => new Date(NOW.getTime() + offsetSeconds * 1000);

describe("required claims", () => {
  it.each(["exp", "jti", "task", "scope", "sub", "iat", "nbf", "iss", "aud"])("rejects a token without %s", async (claim) => {
    const claims = f.claims();
    delete claims[claim];
    const token = await f.signRaw(f.header(), claims);
    await expectReason(verifyTaskToken(token, f.options()), "claim_missing", token, claim);
  });

  it.each([
    ["exp", "9999999999"],
    ["exp", 1.5e9 + 0.5],
    ["exp", NOW_S - 10_000], // exp <= iat
    ["iat", "now"],
    ["nbf", -1],
    ["jti", 42],
    ["jti", "short"],
    ["sub", ""],
    ["sub", "agent\nforged-log-line"],
    ["task", { id: "task_01" }],
    ["task", "x".repeat(200)],
    // The scope claim must be the one canonical spelling: no lenient re-reading of what it allows.
    ["scope", ["railway:staging:read"]],
    ["scope", 7],
    ["scope", "RAILWAY:staging:read"],
    ["scope", "railway:staging:read,github:*:read"],
    ["scope", "none"],
    ["scope", "*"],
    ["scope", "railway:staging:read railway:staging:read"],
    ["scope", "railway:staging:everything"],
    ["scope", `${"a:b:read ".repeat(200)}`.trim()],
  ])("rejects %s = %j as claim_invalid", async (claim, value) => {
    const token = await f.signRaw(f.header(), f.claims({ [claim]: value }));
    await expectReason(verifyTaskToken(token, f.options()), "claim_invalid", token, claim);
  });
});

describe("issuer, audience, type", () => {
  it("rejects another issuer", async () => {
    const token = await f.signRaw(f.header(), f.claims({ iss: "https://bulkhead.test.attacker.example" }));
    await expectReason(verifyTaskToken(token, f.options()), "iss_mismatch", token);
  });

  it.each([["other-service"], [`${AUDIENCE} `], [AUDIENCE.toUpperCase()]])("rejects audience %j", async (aud) => {
    const token = await f.signRaw(f.header(), f.claims({ aud }));
    await expectReason(verifyTaskToken(token, f.options()), "aud_mismatch", token);
  });

  it("rejects an audience array containing ours plus another (and a one-element array)", async () => {
    for (const aud of [[AUDIENCE, "other-service"], ["other-service", AUDIENCE], [AUDIENCE]]) {
      const token = await f.signRaw(f.header(), f.claims({ aud }));
      await expectReason(verifyTaskToken(token, f.options()), "aud_mismatch", token);
    }
  });

  it.each(["JWT", "at+jwt", "bulkhead-task+JWT", "application/bulkhead-task+jwt", 1])("rejects typ %j", async (typ) => {
    const token = await f.signRaw(f.header({ typ }), f.claims());
    await expectReason(verifyTaskToken(token, f.options()), "typ_mismatch", token);
  });

  it("rejects a token without typ", async () => {
    const h = f.header();
    delete h.typ;
    const token = await f.signRaw(h, f.claims());
    await expectReason(verifyTaskToken(token, f.options()), "typ_mismatch", token);
  });
});

describe("time", () => {
  it("accepts an expired token within the 5 s tolerance and rejects it beyond", async () => {
    const token = await f.mint({ ttlSeconds: 60 });
    await expect(verifyTaskToken(token, f.options({ now: at(60 + 4.9) }))).resolves.toBeDefined();
    await expectReason(verifyTaskToken(token, f.options({ now: at(60 + 5) })), "expired", token);
    await expectReason(verifyTaskToken(token, f.options({ now: at(60 + 3600) })), "expired", token);
  });

  it("with zero tolerance, the token is expired exactly at exp", async () => {
    const token = await f.mint({ ttlSeconds: 60 });
    await expect(verifyTaskToken(token, f.options({ now: at(59.999), clockToleranceSeconds: 0 }))).resolves.toBeDefined();
    await expectReason(verifyTaskToken(token, f.options({ now: at(60), clockToleranceSeconds: 0 })), "expired");
  });

  it("refuses a clock tolerance above 5 s (configuration error, not silently widened)", async () => {
    const token = await f.mint();
    for (const clockToleranceSeconds of [6, 300, Number.POSITIVE_INFINITY, -1, Number.NaN]) {
      await expect(verifyTaskToken(token, f.options({ clockToleranceSeconds }))).rejects.toThrow(RangeError);
    }
  });

  it("rejects nbf in the future beyond tolerance, accepts it within", async () => {
    const soon = await f.signRaw(f.header(), f.claims({ nbf: NOW_S + 4 }));
    await expect(verifyTaskToken(soon, f.options())).resolves.toBeDefined();
    const later = await f.signRaw(f.header(), f.claims({ nbf: NOW_S + 30 }));
    await expectReason(verifyTaskToken(later, f.options()), "not_yet_valid", later, "nbf");
  });

  it("rejects iat in the future beyond tolerance", async () => {
    const token = await f.signRaw(f.header(), f.claims({ iat: NOW_S + 60, nbf: NOW_S, exp: NOW_S + 300 }));
    await expectReason(verifyTaskToken(token, f.options()), "not_yet_valid", token, "iat");
  });

  it("rejects a token minted in the future (clock of the issuer ahead)", async () => {
    const token = await f.mint({ now: at(3600), taskEndsAt: at(7200) });
    await expectReason(verifyTaskToken(token, f.options()), "not_yet_valid", token);
  });

  it("accepts a token living exactly the one-hour maximum, and refuses a correctly signed one that lives longer", async () => {
    const hour = await f.signRaw(f.header(), f.claims({ iat: NOW_S, nbf: NOW_S, exp: NOW_S + 3600 }));
    await expect(verifyTaskToken(hour, f.options())).resolves.toBeDefined();
    for (const exp of [NOW_S + 3601, NOW_S + 30 * 86400]) {
      const long = await f.signRaw(f.header(), f.claims({ iat: NOW_S, nbf: NOW_S, exp }));
      await expectReason(verifyTaskToken(long, f.options()), "lifetime_exceeded", long);
    }
  });

  it("refuses a token minted long ago whose lifetime reaches into the present", async () => {
    const old = await f.signRaw(f.header(), f.claims({ iat: NOW_S - 29 * 86400, nbf: NOW_S - 29 * 86400, exp: NOW_S + 86400 }));
    await expectReason(verifyTaskToken(old, f.options()), "lifetime_exceeded", old);
  });

  it("rejects an invalid now (fails closed)", async () => {
    const token = await f.mint();
    await expect(verifyTaskToken(token, f.options({ now: new Date(Number.NaN) }))).rejects.toThrow(TypeError);
  });
});

describe("revocation", () => {
  it("rejects the token of an ended task", async () => {
    const token = await f.mint();
    f.revocation.revokeTask(TASK);
    await expectReason(verifyTaskToken(token, f.options()), "task_revoked", token);
  });

  it("rejects the token of a suspended agent, and accepts it again once reinstated", async () => {
    const token = await f.mint();
    f.revocation.suspendAgent(AGENT);
    await expectReason(verifyTaskToken(token, f.options()), "agent_suspended", token);
    f.revocation.reinstateAgent(AGENT);
    await expect(verifyTaskToken(token, f.options())).resolves.toMatchObject({ agentId: AGENT });
  });

  it("rejects a revoked jti but not a sibling token of the same task", async () => {
    const token = await f.mint();
    const sibling = await f.mint();
    const { jti } = await verifyTaskToken(token, f.options());
    f.revocation.revokeJti(jti);
    await expectReason(verifyTaskToken(token, f.options()), "jti_revoked", token);
    await expect(verifyTaskToken(sibling, f.options())).resolves.toBeDefined();
  });

  it("revocation of another task or agent does not affect this token", async () => {
    const token = await f.mint();
    f.revocation.revokeTask("task_02");
    f.revocation.suspendAgent("agent_02");
    await expect(verifyTaskToken(token, f.options())).resolves.toBeDefined();
  });
});

describe("result", () => {
  it("returns the identity, and a frozen result", async () => {
    const token = await f.mint();
    const v = await verifyTaskToken(token, f.options());
    expect(v).toMatchObject({ agentId: AGENT, taskId: TASK, kid: f.signing.kid });
    expect(v.issuedAt.getTime()).toBe(NOW_S * 1000);
    expect(v.expiresAt.getTime()).toBe((NOW_S + 300) * 1000);
    expect(v.jti).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(Object.isFrozen(v)).toBe(true);
    expect(Object.isFrozen(v.claims)).toBe(true);
  });
});
