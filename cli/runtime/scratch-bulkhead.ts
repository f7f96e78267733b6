/**
 * The Bulkhead `bulkhead replay` plays against: a throwaway one, with its own embedded
 * PostgreSQL in a temporary folder, its own master key, CA and signing key. The replay
 * reconfigures Railway (an internal address, an inventory, a staging credential) and creates
 * tasks; none of that may touch the installation it is run from, which only receives the record
 * of the run.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { hashPassword } from "@/lib/auth/password";
import { loadIdentityConfig } from "@/lib/config/identity";
import { generateMasterKey, parseMasterKey } from "@/lib/crypto/envelope";
import { createPrismaClient } from "@/lib/db/client";
import { EmbeddedDatabaseError, startEmbeddedDatabase, type EmbeddedDatabase } from "@/lib/db/embedded";
import { ensureSigningKey } from "@/lib/identity/key-store";
import { establishProcessKeys } from "@/lib/keys/establish";
import { workerKeyEnvironment } from "@/lib/keys/process-keys";
import { migrateDatabase, ownerUrl, runtimeUrl } from "./database-roles";
import { prepareEmbeddedRoles } from "./database-roles";
import { ensureCertificateAuthority } from "@/lib/tls/ca-store";
import { cleanUpOnSignal } from "@/lib/process/ending-signals";
import type { ReplayBulkhead } from "@/replay/run";

const REPLAY_ACTOR = { kind: "system", label: "replay" } as const;

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/**
 * The throwaway PostgreSQL on a port that was free a moment ago. Another program can take it
 * before PostgreSQL binds it (any outgoing connection on the machine may be given it as its own
 * port), so a port found taken is replaced by another, a few times.
 */
async function startOnFreePort(dir: string): Promise<EmbeddedDatabase> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startEmbeddedDatabase({ dataDir: dir, port: await freePort() });
    } catch (error) {
      const taken = error instanceof EmbeddedDatabaseError && /already in use/.test(error.message);
      if (!taken || attempt >= 5) throw error;
    }
  }
}

export async function startScratchBulkhead(log: (line: string) => void): Promise<{ bulkhead: ReplayBulkhead; close(): Promise<void> }> {
  const dir = mkdtempSync(path.join(tmpdir(), "bh-replay-db-"));
  // A signal (Ctrl-C, a CI timeout, a closed terminal) must not leave this server running, also
  // while it starts: the cleanup waits for the start to end (lib/process/ending-signals.ts).
  let settle!: (pg: EmbeddedDatabase | null) => void;
  const started = new Promise<EmbeddedDatabase | null>((resolve) => (settle = resolve));
  const clients: Array<{ $disconnect(): Promise<void> }> = [];
  let closed: Promise<void> | null = null;
  const close = () =>
    (closed ??= (async () => {
      for (const c of clients) await c.$disconnect().catch(() => undefined);
      await (await started)?.stop().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
      undoOnSignal();
    })());
  const undoOnSignal = cleanUpOnSignal(close);
  const pg = await startOnFreePort(dir).catch(async (error: unknown) => {
    settle(null);
    await close();
    throw error;
  });
  settle(pg);
  try {
    const urls = await prepareEmbeddedRoles(pg.url, dir, () => undefined);
    await migrateDatabase(urls, () => undefined);
    const owner = createPrismaClient(ownerUrl(urls), 2);
    clients.push(owner);
    const { keys } = await establishProcessKeys(owner, parseMasterKey(generateMasterKey()));
    const db = createPrismaClient(runtimeUrl(urls, "dashboard"), 4);
    clients.push(db);
    await ensureSigningKey(db, keys.dashboardKey);
    await ensureCertificateAuthority(db, keys.workerKey);
    const user = await db.user.create({ data: { email: `replay-${randomBytes(4).toString("hex")}@bulkhead.invalid`, role: "admin", passwordHash: await hashPassword(randomBytes(24).toString("base64url")) } });
    log(`Replay database ready (embedded PostgreSQL in ${dir}).`);
    return {
      bulkhead: {
        db,
        admin: REPLAY_ACTOR,
        ownerId: user.id,
        urls: { owner: ownerUrl(urls), dashboard: runtimeUrl(urls, "dashboard"), worker: runtimeUrl(urls, "worker") },
        workerKey: keys.workerKey,
        dashboardKey: keys.dashboardKey,
        identity: loadIdentityConfig({}),
        workerKeyEnv: workerKeyEnvironment(keys),
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
