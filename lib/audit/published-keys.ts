import { loadAuditViewConfig } from "@/lib/config/audit";
import { loadCommonConfig } from "@/lib/config/common";
import { loadReportKeyConfig } from "@/lib/config/process-keys";
import { reportVerificationKey } from "@/lib/reports/signature";
import { readRetiredCheckpointKeys, readRetiredReportKeys } from "@/lib/keys/retired-checkpoint-keys";

export interface PublishedAuditKey {
  keyId: string;
  /** Raw Ed25519 public key, base64url (also as a JWK below). */
  publicKey: string;
  alg: "EdDSA";
  jwk: { kty: "OKP"; crv: "Ed25519"; x: string; kid: string; use: "sig" };
  /**
   * `checkpoint`: the signer's current key; `checkpoint-legacy`: format-1 checkpoints; `checkpoint-retired`:
   * master keys rotated away; `report`: the key that signs task reports now; `report-retired`: the
   * report keys of master keys rotated away (reports signed before a rotation).
   */
  use: "checkpoint" | "checkpoint-legacy" | "checkpoint-retired" | "report" | "report-retired";
}

/**
 * What /.well-known/bulkhead-audit-keys.json lists: every public key a Bulkhead checkpoint may be
 * signed with, as the launcher gave them to the dashboard (signer first), then retired ones, and
 * the key that signs task reports.
 */
export function publishedAuditKeys(): { keys: PublishedAuditKey[] } {
  const given = loadAuditViewConfig().checkpointPublicKeys;
  let retired: Array<{ keyId: string; publicKey: string }> = [];
  try {
    retired = readRetiredCheckpointKeys(loadCommonConfig().dataDir);
  } catch (error) {
    console.error("audit: cannot read the retired checkpoint keys", error);
  }
  let retiredReport: Array<{ keyId: string; publicKey: string }> = [];
  try {
    retiredReport = readRetiredReportKeys(loadCommonConfig().dataDir);
  } catch (error) {
    console.error("audit: cannot read the retired report keys", error);
  }
  const entry = (k: { keyId: string; publicKey: string }, use: PublishedAuditKey["use"]): PublishedAuditKey => ({
    keyId: k.keyId,
    publicKey: k.publicKey,
    alg: "EdDSA",
    jwk: { kty: "OKP", crv: "Ed25519", x: k.publicKey, kid: k.keyId, use: "sig" },
    use,
  });
  const reportKey = loadReportKeyConfig();
  const report = [...(reportKey ? [entry(reportVerificationKey(reportKey), "report")] : []), ...retiredReport.map((k) => entry(k, "report-retired"))];
  return { keys: [...given.map((k, i) => entry(k, i === 0 ? "checkpoint" : "checkpoint-legacy")), ...retired.map((k) => entry(k, "checkpoint-retired")), ...report] };
}
