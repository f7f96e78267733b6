// A separately running verifier: the worker's enforcement core in its own process, answering
// token checks over IPC. Used to prove that revocations reach other processes in time.
import { requireRuntimeDatabaseUrl } from "@/lib/config/common";
import { loadIdentityConfig } from "@/lib/config/identity";
import { createPrismaClient } from "@/lib/db/client";
import { isTokenError } from "@/lib/identity/errors";
import { createLogger } from "@/lib/log";
import { startEnforcementCore } from "@/proxy-worker/core";

const databaseUrl = requireRuntimeDatabaseUrl("worker");
const db = createPrismaClient(databaseUrl, 2);
const core = await startEnforcementCore({
  db,
  databaseUrl,
  log: createLogger("verifier-child", "silent"),
  identity: loadIdentityConfig(),
  reconcileIntervalMs: 60_000,
});

process.on("message", async (m: { id: number; token: string }) => {
  try {
    const r = await core.tokens.authenticate(m.token);
    process.send!({ id: m.id, ok: true, taskId: r.task.id });
  } catch (error) {
    process.send!({ id: m.id, ok: false, reason: isTokenError(error) ? error.reason : String(error) });
  }
});
process.on("disconnect", async () => {
  await core.close();
  await db.$disconnect();
  process.exit(0);
});
process.send!({ ready: true });
