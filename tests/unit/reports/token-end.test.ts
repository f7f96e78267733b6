import { describe, expect, it } from "vitest";
import { tokenEnd } from "@/lib/reports/token-end";

const t = (expiresAt: number, revokedAt: number | null = null) => ({ jti: "j", issuedAt: new Date(0), expiresAt: new Date(expiresAt), revokedAt: revokedAt === null ? null : new Date(revokedAt), issuedBy: null });
const task = (endedAt: number | null) => ({ id: "t", purpose: "p", status: endedAt === null ? "active" : "ended", scope: "*:*:read", createdAt: new Date(0), createdBy: null, expiresAt: new Date(10_000), endedAt: endedAt === null ? null : new Date(endedAt), endedReason: null });

describe("a report's token: how it ended", () => {
  it("a token cut short by its task's end says so, as the task page does", () => {
    expect(tokenEnd(t(5_000), task(2_000), new Date(3_000))).toEqual({ word: "task ended", at: new Date(2_000) });
  });
  it("revoked before the task ended: revoked; after: the task's end came first", () => {
    expect(tokenEnd(t(5_000, 1_000), task(2_000), new Date(3_000))).toEqual({ word: "revoked", at: new Date(1_000) });
    expect(tokenEnd(t(5_000, 2_500), task(2_000), new Date(3_000))).toEqual({ word: "task ended", at: new Date(2_000) });
  });
  it("expired before the task ended, or with the task still running", () => {
    expect(tokenEnd(t(1_000), task(2_000), new Date(3_000))).toEqual({ word: "expired", at: new Date(1_000) });
    expect(tokenEnd(t(1_000), task(null), new Date(3_000))).toEqual({ word: "expired", at: new Date(1_000) });
    expect(tokenEnd(t(5_000), task(null), new Date(3_000))).toEqual({ word: "expires", at: new Date(5_000) });
  });
});
