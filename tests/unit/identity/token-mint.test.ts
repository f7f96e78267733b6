import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { TokenMintError } from "@/lib/identity/errors";
import { mintTaskToken, TASK_TOKEN_TYP, verifyTaskToken, type MintTaskTokenInput } from "@/lib/identity/token";
import { AUDIENCE, decodeSegment, ISSUER, makeFixture, NOW, type Fixture } from "./helpers";

let f: Fixture;
let base: MintTaskTokenInput;

beforeAll(async () => {
  f = await makeFixture();
  base = {
    key: { kid: f.signing.kid, privateKey: f.privateKey },
    issuer: ISSUER,
    audience: AUDIENCE,
    agentId: "agent_01",
    taskId: "task_01",
    scope: "railway:staging:read",
    ttlSeconds: 300,
    taskEndsAt: new Date(NOW.getTime() + 3_600_000),
    now: NOW,
  };
});

describe("mintTaskToken", () => {
  it("produces exactly the pinned header and the required claims", async () => {
    const minted = await mintTaskToken(base);
    const [h, p] = minted.token.split(".") as [string, string];
    expect(decodeSegment(h)).toEqual({ alg: "EdDSA", typ: TASK_TOKEN_TYP, kid: f.signing.kid });
    const iat = Math.floor(NOW.getTime() / 1000);
    expect(decodeSegment(p)).toEqual({
      iss: ISSUER,
      aud: AUDIENCE,
      sub: "agent_01",
      task: "task_01",
      scope: "railway:staging:read",
      jti: minted.jti,
      iat,
      nbf: iat,
      exp: iat + 300,
    });
    expect(minted.jti).toMatch(/^[A-Za-z0-9_-]{22}$/); // 128 bits
    expect(minted.expiresAt.getTime()).toBe((iat + 300) * 1000);
    expect(minted.issuedAt.getTime()).toBe(iat * 1000);
  });

  it("carries the task's scope as a claim, which verification returns parsed", async () => {
    const minted = await mintTaskToken({ ...base, scope: "github:*:write railway:staging:read" });
    const verified = await verifyTaskToken(minted.token, f.options());
    expect(verified.claims.scope).toBe("github:*:write railway:staging:read");
    expect(verified.scope.entries).toEqual([
      { service: "github", environment: "*", effect: "write" },
      { service: "railway", environment: "staging", effect: "read" },
    ]);
    expect((await verifyTaskToken((await mintTaskToken({ ...base, scope: "" })).token, f.options())).scope.entries).toEqual([]);
  });

  it("refuses to mint a scope that is not canonical (what is signed is exactly what is stored)", async () => {
    for (const scope of ["RAILWAY:staging:read", "railway:staging:read,github:*:read", "none", "*", "railway:staging"]) {
      const err = await mintTaskToken({ ...base, scope }).catch((e: unknown) => e);
      expect(err, scope).toBeInstanceOf(TokenMintError);
    }
  });

  it("uses a fresh jti each time", async () => {
    const jtis = new Set<string>();
    for (let i = 0; i < 20; i++) jtis.add((await mintTaskToken(base)).jti);
    expect(jtis.size).toBe(20);
  });

  it("caps exp at the task's end", async () => {
    const taskEndsAt = new Date(NOW.getTime() + 42_700);
    const minted = await mintTaskToken({ ...base, ttlSeconds: 3600, taskEndsAt });
    expect(minted.expiresAt.getTime()).toBeLessThanOrEqual(taskEndsAt.getTime());
    expect(minted.expiresAt.getTime()).toBe(NOW.getTime() + 42_000);
  });

  it("refuses to mint for a task that has ended (or ends within the second)", async () => {
    for (const taskEndsAt of [NOW, new Date(NOW.getTime() - 1), new Date(NOW.getTime() + 999)]) {
      const err = await mintTaskToken({ ...base, taskEndsAt }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TokenMintError);
      expect((err as TokenMintError).reason).toBe("task_ended");
    }
  });

  it("refuses a ttl that is not positive", async () => {
    for (const ttlSeconds of [0, -5, 0.5, Number.NaN, Number.POSITIVE_INFINITY, 3601, 30 * 86400]) {
      const err = await mintTaskToken({ ...base, ttlSeconds }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TokenMintError);
      expect((err as TokenMintError).reason).toBe("invalid_ttl");
    }
  });

  it("refuses ids and jtis that a verifier would refuse", async () => {
    const bad: Partial<MintTaskTokenInput>[] = [
      { agentId: "" },
      { taskId: "task\n01" },
      { jti: "short" },
      { key: { kid: "../../x", privateKey: f.privateKey } },
    ];
    for (const change of bad) {
      await expect(mintTaskToken({ ...base, ...change })).rejects.toBeInstanceOf(TokenMintError);
    }
  });

  it("property: exp is never past the task's end nor past now + ttl, and the token verifies at now", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1_700_000_000_000, max: 2_000_000_000_000 }),
        fc.integer({ min: 1, max: 3_600 }),
        fc.integer({ min: 1_000, max: 172_800_000 }),
        async (nowMs, ttlSeconds, remainingMs) => {
          const now = new Date(nowMs);
          const taskEndsAt = new Date(nowMs + remainingMs);
          let minted;
          try {
            minted = await mintTaskToken({ ...base, now, ttlSeconds, taskEndsAt });
          } catch (e) {
            // Only legitimate refusal: the task ends within the current second.
            expect((e as TokenMintError).reason).toBe("task_ended");
            expect(Math.floor(taskEndsAt.getTime() / 1000)).toBe(Math.floor(nowMs / 1000));
            return;
          }
          expect(minted.expiresAt.getTime()).toBeLessThanOrEqual(taskEndsAt.getTime());
          expect(minted.expiresAt.getTime()).toBeLessThanOrEqual(nowMs + ttlSeconds * 1000);
          const v = await verifyTaskToken(minted.token, f.options({ now }));
          expect(v.expiresAt.getTime()).toBe(minted.expiresAt.getTime());
        },
      ),
      { numRuns: 60 },
    );
  });
});
