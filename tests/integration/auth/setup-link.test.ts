import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { hashPassword } from "@/lib/auth/password";
import { isAppError } from "@/lib/errors/app-error";
import { completeSetup, issueSetupTokenIfNeeded } from "@/lib/users/setup";
import { createTestDatabase, type TestDatabase } from "../../support/database";

// The real argon2id hash, counted: the question is whether the setup action runs it at all.
vi.mock("@/lib/auth/password", async (importOriginal) => {
  const real = await importOriginal<typeof import("@/lib/auth/password")>();
  return { ...real, hashPassword: vi.fn(real.hashPassword) };
});

const INPUT = { email: "mallory@example.test", password: "a long enough password", confirm: "a long enough password" };

async function refusal(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
  } catch (error) {
    if (isAppError(error)) return `${error.code}: ${error.message}`;
    throw error;
  }
  throw new Error("not refused");
}

/**
 * The first-run setup action is unauthenticated: its link's token is the credential, and anyone
 * who can reach the dashboard can call the action with any token, before and after setup. A
 * token that cannot be used must cost a database lookup, not an argon2id hash of the password
 * sent with it (CPU and 19 MiB on the thread pool that sign-ins use), or a loop of such calls
 * slows every sign-in of the dashboard without ever being throttled.
 */
describe("first-run setup with a link that cannot be used", () => {
  let t: TestDatabase;
  const hashes = vi.mocked(hashPassword);
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  beforeEach(() => {
    hashes.mockClear();
  });
  afterAll(() => t.drop());

  it("refuses a wrong, expired or used token without hashing the password sent with it", async () => {
    const token = (await issueSetupTokenIfNeeded(t.db))!;
    const invalid = "FORBIDDEN: This setup link is invalid, expired or already used.";
    for (const wrong of [`${token}x`, token.slice(0, -1), "", "not-a-valid-setup-token", token.toUpperCase()]) {
      expect(await refusal(() => completeSetup(t.db, wrong, INPUT)), wrong).toBe(invalid);
    }
    expect(await refusal(() => completeSetup(t.db, token, INPUT, new Date(Date.now() + 25 * 3600_000))), "expired").toBe(invalid);
    expect(hashes).not.toHaveBeenCalled();

    // The link still works, once, hashing the password once.
    const userId = await completeSetup(t.db, token, INPUT);
    expect(hashes).toHaveBeenCalledTimes(1);
    expect(await t.db.user.findUnique({ where: { id: userId }, select: { role: true } })).toEqual({ role: "admin" });

    hashes.mockClear();
    for (let i = 0; i < 5; i++) expect(await refusal(() => completeSetup(t.db, token, { ...INPUT, email: `m${i}@example.test` })), "used").toBe(invalid);
    // Once an admin exists, a fresh token row (left from an older start) opens nothing either.
    const stale = (await issueSetupTokenIfNeeded(t.db)) ?? "none: setup is closed";
    expect(await refusal(() => completeSetup(t.db, stale, INPUT))).toBe(invalid);
    expect(hashes).not.toHaveBeenCalled();
    expect(await t.db.user.count()).toBe(1);
  });
});

/**
 * Two links valid at once (two starts that raced to issue one each: each deletes the others and
 * adds its own, and both may commit) must still create one admin, whichever is used first and
 * however close together. Each submission locked only its own link's row, so two submissions of
 * two links both saw no user yet and both created an admin.
 */
describe("first-run setup with two links valid at once", () => {
  let t: TestDatabase;
  const hashes = vi.mocked(hashPassword);
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(() => t.drop());

  it("creates one admin when both are submitted together", async () => {
    const tokens = [randomBytes(24).toString("base64url"), randomBytes(24).toString("base64url")];
    for (const token of tokens) {
      await t.db.setupToken.create({ data: { tokenHash: createHash("sha256").update(token).digest("hex"), expiresAt: new Date(Date.now() + 3600_000) } });
    }
    // Both submissions reach their transaction at the same moment: each password's hash resolves
    // only once both have been asked for.
    const real = (await vi.importActual<typeof import("@/lib/auth/password")>("@/lib/auth/password")).hashPassword;
    let release!: () => void;
    const both = new Promise<void>((resolve) => (release = resolve));
    let asked = 0;
    hashes.mockImplementation(async (password: string) => {
      const hashed = await real(password);
      if (++asked === 2) release();
      await both;
      return hashed;
    });
    try {
      const results = await Promise.allSettled(tokens.map((token, i) => completeSetup(t.db, token, { ...INPUT, email: `first${i}@example.test` })));
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      const refused = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
      expect(isAppError(refused.reason) && refused.reason.code).toBe("FORBIDDEN");
      expect(await t.db.user.count()).toBe(1);
    } finally {
      hashes.mockReset();
    }
  });
});
