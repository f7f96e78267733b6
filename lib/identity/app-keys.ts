import "server-only";
import { loadCommonConfig } from "@/lib/config/common";
import { masterKeyFromEnv } from "./master-key";

/** The master key in the dashboard process (the launcher provides BULKHEAD_MASTER_KEY). */
export function appMasterKey(): Buffer {
  return masterKeyFromEnv(loadCommonConfig().masterKey);
}
