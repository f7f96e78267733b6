import { loadAuditViewConfig } from "@/lib/config/audit";
import { loadCommonConfig } from "@/lib/config/common";
import { readRetiredCheckpointKeys } from "@/lib/keys/retired-checkpoint-keys";
import type { CheckpointKey } from "./checkpoints";

/**
 * The checkpoint verification keys the dashboard trusts: the public keys the launcher gave it and
 * the keys of master keys rotated away (kept in the data folder, outside the database). null when
 * it was given none: signatures are then not checked, and the page says so.
 */
export function dashboardCheckpointKeys(): CheckpointKey[] | null {
  const { checkpointPublicKeys } = loadAuditViewConfig();
  if (checkpointPublicKeys.length === 0) return null;
  let retired: CheckpointKey[] = [];
  try {
    retired = readRetiredCheckpointKeys(loadCommonConfig().dataDir);
  } catch (error) {
    // A damaged file must not hide the chain's status; old checkpoints then show as untrusted.
    console.error("audit: cannot read the retired checkpoint keys", error);
  }
  return [...checkpointPublicKeys, ...retired];
}
