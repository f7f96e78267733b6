/**
 * The bench's Bulkhead data, written through the same domain functions the dashboard uses:
 * a user, an agent, three custom services on loopback (plain HTTP with a credential, plain HTTP
 * without one, and GitHub over HTTPS with a credential), a task whose policy allows reads on all
 * three, and its token. Also a second task for the propagation probes.
 */
import { stringify } from "yaml";
import type { Actor } from "@/lib/auth/actor";
import { hashPassword } from "@/lib/auth/password";
import { createPrismaClient, type Db } from "@/lib/db/client";
import { migrate } from "@/lib/db/migrate";
import { ensureSigningKey, loadActiveSigningKey } from "@/lib/identity/key-store";
import { establishProcessKeys } from "@/lib/keys/establish";
import { deriveProcessKeys } from "@/lib/keys/process-keys";
import { issueTaskToken } from "@/lib/identity/task-tokens";
import { mintTaskToken } from "@/lib/identity/token";
import { MAX_TOKEN_TTL_SECONDS } from "@/lib/tasks/settings";
import { github } from "@/lib/semantics/descriptors/github";
import type { ServiceDescriptorInput } from "@/lib/semantics/descriptors/schema";
import { createTask } from "@/lib/tasks/tasks";
import { addCredential } from "@/lib/vault/add-credential";

export const IDENTITY = { issuer: "bulkhead", audience: "bulkhead-proxy" };
export const HOSTS = { rest: "api.bench.test", nocred: "api.nocred.test", github: "api.github.com" } as const;
export const REST_PATH = "/repos/acme/app/issues";

export const ALLOW_POLICY = "unlisted: deny\nrules:\n  - service: bench-rest\n    effects: [read]\n  - service: bench-nocred\n    effects: [read]\n  - service: github\n    effects: [read]\n";
export const DENY_POLICY = "unlisted: deny\nrules: []\n";

export interface Seeded {
  db: Db;
  admin: Actor;
  agentId: string;
  taskId: string;
  token: string;
  probeTaskId: string;
  probeToken: string;
}

/** A REST service on loopback with GitHub's routes (so classification does real work). */
function restService(id: string, host: string, port: number): ServiceDescriptorInput {
  return { id, hosts: [host], scheme: "http", ports: [port], protocol: "rest", rest: github.rest, proxy: { internalAddresses: ["127.0.0.1/32"] } };
}

export async function seed(options: { databaseUrl: string; masterKey: Buffer; httpPort: number; httpsPort: number; secret: string }): Promise<Seeded> {
  const { databaseUrl, masterKey } = options;
  await migrate(databaseUrl);
  const db = createPrismaClient(databaseUrl, 4);
  // The bench plays the launcher: it holds the master key and uses each process's own key.
  const { keys } = await establishProcessKeys(db, masterKey);
  await ensureSigningKey(db, keys.dashboardKey);
  const user = await db.user.create({ data: { email: "bench@example.test", role: "admin", passwordHash: await hashPassword("bench password, never used") } });
  // Seeding runs right after "signing in": fresh for the step-up that credentials and wide policies need.
  const admin: Actor = { kind: "user", userId: user.id, email: user.email, role: "admin", authenticatedAt: Date.now() };
  const agent = await db.agent.create({ data: { name: "bench-agent", ownerId: user.id } });

  const services: ServiceDescriptorInput[] = [
    restService("bench-rest", HOSTS.rest, options.httpPort),
    restService("bench-nocred", HOSTS.nocred, options.httpPort),
    { ...github, ports: [options.httpsPort], proxy: { internalAddresses: ["127.0.0.1/32"] } },
  ];
  for (const d of services) await db.service.create({ data: { name: String(d.id), descriptorYaml: stringify(d) } });
  const header = "Authorization: Bearer {secret}";
  await addCredential(db, admin, keys.workerKey, { name: "bench-rest", scheme: "http", host: HOSTS.rest, port: options.httpPort, headerTemplate: header, secret: options.secret, environments: "*" } as never);
  await addCredential(db, admin, keys.workerKey, { name: "bench-github", scheme: "https", host: HOSTS.github, port: options.httpsPort, headerTemplate: header, secret: options.secret, environments: "*" } as never);

  const task = await createTask(db, admin, { agentId: agent.id, purpose: "bulkhead benchmark", policyYaml: ALLOW_POLICY, ttl: "2h" });
  const probe = await createTask(db, admin, { agentId: agent.id, purpose: "bulkhead benchmark propagation probe", policyYaml: ALLOW_POLICY, ttl: "2h" });
  const token = (await issueTaskToken(db, admin, keys.dashboardKey, IDENTITY, task.id)).token;
  const probeToken = (await issueTaskToken(db, admin, keys.dashboardKey, IDENTITY, probe.id)).token;
  return { db, admin, agentId: agent.id, taskId: task.id, token, probeTaskId: probe.id, probeToken };
}

/**
 * `count` distinct valid tokens for the task, signed with the active key and recorded in
 * issued_tokens (the worker refuses a jti Bulkhead never issued): each one is a token-cache miss.
 */
export async function mintColdTokens(s: Seeded, masterKey: Buffer, count: number): Promise<string[]> {
  const key = await loadActiveSigningKey(s.db, deriveProcessKeys(masterKey).dashboardKey);
  if (!key) throw new Error("no active signing key");
  const task = await s.db.task.findUniqueOrThrow({ where: { id: s.taskId }, select: { expiresAt: true, scope: true } });
  const out: string[] = [];
  const rows: Array<{ jti: string; taskId: string; agentId: string; kid: string; issuedAt: Date; expiresAt: Date }> = [];
  const now = new Date();
  for (let i = 0; i < count; i++) {
    const minted = await mintTaskToken({ ...IDENTITY, key, agentId: s.agentId, taskId: s.taskId, scope: task.scope, ttlSeconds: MAX_TOKEN_TTL_SECONDS, taskEndsAt: task.expiresAt, now });
    rows.push({ jti: minted.jti, taskId: s.taskId, agentId: s.agentId, kid: key.kid, issuedAt: minted.issuedAt, expiresAt: minted.expiresAt });
    out.push(minted.token);
  }
  await s.db.issuedToken.createMany({ data: rows });
  return out;
}
