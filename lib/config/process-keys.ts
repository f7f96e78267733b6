import { z } from "zod";
import { parseEnv } from "./env";

/**
 * Each process's own keys, as the launcher passes them (lib/keys/process-keys.ts says what each
 * opens). Values are never echoed in errors: parseEnv prints no values, and these messages do not
 * either. For processes started by hand: `bulkhead keys env dashboard|worker` prints them.
 */
const key32 = (name: string) =>
  z
    .string({ error: `is required: start Bulkhead with \`bulkhead start\` (which provides it), or print it with \`bulkhead keys env ${name}\`` })
    .regex(/^[A-Za-z0-9_-]{43}$/, "must be 32 bytes in base64url (43 characters), as `bulkhead keys env` prints it")
    .transform((v) => Buffer.from(v, "base64url"))
    .refine((b) => b.toString("base64url").length === 43 && b.length === 32, "must be canonical base64url of 32 bytes");

const dashboardSchema = z.object({
  /** Opens the task-token signing keys. */
  BULKHEAD_DASHBOARD_KEY: key32("dashboard"),
  /** The worker's X25519 public key: credentials are sealed to it. */
  BULKHEAD_WORKER_PUBLIC_KEY: key32("dashboard"),
});

const workerSchema = z.object({
  /** The worker's X25519 private key: opens credentials and the interception CA's key. */
  BULKHEAD_WORKER_KEY: key32("worker"),
});

export interface DashboardKeyConfig {
  dashboardKey: Buffer;
  workerPublicKey: Buffer;
}

export interface WorkerKeyConfig {
  workerKey: Buffer;
}

export function loadDashboardKeyConfig(source: Record<string, string | undefined> = process.env): DashboardKeyConfig {
  const env = parseEnv(dashboardSchema, source);
  return { dashboardKey: env.BULKHEAD_DASHBOARD_KEY, workerPublicKey: env.BULKHEAD_WORKER_PUBLIC_KEY };
}

export function loadWorkerKeyConfig(source: Record<string, string | undefined> = process.env): WorkerKeyConfig {
  const env = parseEnv(workerSchema, source);
  return { workerKey: env.BULKHEAD_WORKER_KEY };
}

const reportSchema = z.object({
  /** Ed25519 seed that signs task reports; the launcher gives it to the dashboard. */
  BULKHEAD_REPORT_SIGNING_KEY: key32("dashboard").optional(),
});

/** The dashboard's report-signing key, or null (a dashboard started by hand without it cannot sign reports). */
export function loadReportKeyConfig(source: Record<string, string | undefined> = process.env): Buffer | null {
  return parseEnv(reportSchema, source).BULKHEAD_REPORT_SIGNING_KEY ?? null;
}
