import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { approvalSealKey, sealApproval, sealMatches, type SealedApproval } from "@/lib/approvals/seal";
import { boxKeyPairFromSeed } from "@/lib/crypto/sealed-box";

const row: SealedApproval = {
  id: "0b8e6f0a-3c1e-4c8b-9a51-5d1f0f2b7a10",
  taskId: "7d1c2a3b-1111-4222-8333-944455566677",
  agentId: "a1b2c3d4-1111-4222-8333-944455566677",
  jti: "jti-1",
  requestDigest: "d".repeat(64),
  method: "POST",
  url: "https://backboard.railway.com/graphql/v2",
  actions: [{ service: "railway", environment: "production", resource: "vol_prod", operation: "volumeDelete", effect: "irreversible", detail: { n: 1.5, list: [1, "a", null] } }],
  reason: "irreversible action held for approval",
  requestHeaders: { "content-type": "application/json" },
  requestBody: new TextEncoder().encode('{"query":"mutation { volumeDelete(volumeId: \\"vol_prod\\") }"}'),
  requiredApprovals: 1,
};

describe("approval seals", () => {
  const key = approvalSealKey(boxKeyPairFromSeed(randomBytes(32)).privateKey);

  it("verifies the row it sealed, whatever order jsonb gives its keys back in", () => {
    const seal = sealApproval(key, row);
    expect(seal).toMatch(/^v1\.[0-9a-f]{64}$/);
    const reordered = { ...row, actions: [{ detail: { list: [1, "a", null], n: 1.5 }, effect: "irreversible", operation: "volumeDelete", resource: "vol_prod", environment: "production", service: "railway" }] };
    expect(sealMatches(key, reordered, seal)).toBe(true);
  });

  it.each<[string, Partial<SealedApproval>]>([
    ["id", { id: "0b8e6f0a-3c1e-4c8b-9a51-5d1f0f2b7a11" }],
    ["task", { taskId: "7d1c2a3b-1111-4222-8333-944455566678" }],
    ["agent", { agentId: "a1b2c3d4-1111-4222-8333-944455566678" }],
    ["token", { jti: "jti-2" }],
    ["no token", { jti: null }],
    ["digest", { requestDigest: "e".repeat(64) }],
    ["method", { method: "GET" }],
    ["url", { url: "https://backboard.railway.com/graphql/v3" }],
    ["actions", { actions: [{ service: "railway", environment: "production", resource: "vol_prod", operation: "volume", effect: "read" }] }],
    ["reason", { reason: "read action held for approval" }],
    ["headers", { requestHeaders: { "content-type": "text/plain" } }],
    ["body", { requestBody: new TextEncoder().encode("{}") }],
    ["no body", { requestBody: null }],
    ["approvers", { requiredApprovals: 2 }],
  ])("refuses the seal when the row's %s differs", (_, change) => {
    const seal = sealApproval(key, row);
    expect(sealMatches(key, { ...row, ...change }, seal)).toBe(false);
  });

  it("refuses a missing, malformed or other key's seal", () => {
    const other = approvalSealKey(boxKeyPairFromSeed(randomBytes(32)).privateKey);
    for (const seal of [null, "", "v1.", "v2." + "0".repeat(64), "v1.zz", sealApproval(other, row)]) expect(sealMatches(key, row, seal)).toBe(false);
  });
});
