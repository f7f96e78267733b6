/**
 * Propagation: how long after a change commits in Postgres a running worker enforces it. A probe
 * request goes through the worker every ~1 ms (keep-alive, several connections so no probe waits
 * for another); the change is committed with raw SQL, and the clock starts just before COMMIT is
 * sent. The time is that of the first probe SENT after that instant which got the new answer, so
 * the resolution is the probe interval. Probes sent later must all agree: a later probe answered
 * with anything else is a "flap" (for a revocation, a 200 after the first 407 would be a token
 * working again); a later probe whose connection was cut (the kill switch closes a revoked
 * token's connections) is counted apart, as a reset, with the statuses seen.
 */
import pg from "pg";
import { issueTaskToken } from "@/lib/identity/task-tokens";
import { deriveProcessKeys } from "@/lib/keys/process-keys";
import { clientFor, type Scenario } from "../load";
import { ALLOW_POLICY, DENY_POLICY, IDENTITY, type Seeded } from "./seed";
import { percentiles, round, type Percentiles } from "./stats";

export interface PropagationResult {
  kind: "policy change" | "token revocation";
  changes: number;
  /** Commit (just before COMMIT) -> first probe sent that got the new answer, in ms. */
  propagationMs: Percentiles;
  /** COMMIT round trip as the committing client saw it, in ms. */
  commitMs: Percentiles;
  timeouts: number;
  /** Changes after which a later probe got an HTTP answer other than the new one. */
  flaps: number;
  /** Changes after which a later probe's connection was cut instead (no HTTP answer). */
  resets: number;
  /** What the later probes that disagreed got, over all changes (-1: connection cut). */
  disagreeing: Record<string, number>;
  samplesMs: number[];
}

const now = () => Number(process.hrtime.bigint());
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Probe {
  sent: number;
  status: number | null;
}

/**
 * Probes every ~1 ms from just before `change` until the new answer has been seen and
 * `settleMs` more have passed (bounded by `timeoutMs`).
 */
async function timeFlip(scenario: Scenario, isNew: (status: number) => boolean, change: () => Promise<{ commitStart: number; commitEnd: number }>, timeoutMs = 5_000) {
  const { pool, send } = clientFor(scenario, 8);
  const probes: Probe[] = [];
  let seenNew = 0;
  let i = 0;
  const fire = () => {
    const p: Probe = { sent: now(), status: null };
    probes.push(p);
    send(i++).then(
      (status) => {
        p.status = status;
        if (isNew(status) && !seenNew) seenNew = now();
      },
      () => (p.status = -1),
    );
  };
  // Warm the connections with the old answer first.
  for (let k = 0; k < 8; k++) fire();
  await sleep(30);
  const timer = setInterval(fire, 1);
  const { commitStart, commitEnd } = await change();
  const deadline = commitStart + timeoutMs * 1e6;
  while (!seenNew && now() < deadline) await sleep(2);
  await sleep(20);
  clearInterval(timer);
  const until = now() + 2_000e6;
  while (probes.some((p) => p.status === null) && now() < until) await sleep(5);
  await pool.destroy().catch(() => undefined);
  const after = probes.filter((p) => p.sent >= commitStart && p.status !== null).sort((a, b) => a.sent - b.sent);
  const first = after.findIndex((p) => isNew(p.status!));
  const disagreeing = first >= 0 ? after.slice(first).filter((p) => !isNew(p.status!)).map((p) => p.status!) : [];
  return {
    ms: first >= 0 ? (after[first]!.sent - commitStart) / 1e6 : null,
    commitMs: (commitEnd - commitStart) / 1e6,
    flapped: disagreeing.some((s) => s > 0),
    reset: disagreeing.some((s) => s <= 0),
    disagreeing,
  };
}

/** Runs `sql` in a transaction; the clock starts just before COMMIT. */
async function commit(client: pg.Client, sql: string, params: unknown[]): Promise<{ commitStart: number; commitEnd: number }> {
  await client.query("BEGIN");
  await client.query(sql, params);
  const commitStart = now();
  await client.query("COMMIT");
  return { commitStart, commitEnd: now() };
}

function summarise(kind: PropagationResult["kind"], runs: Array<{ ms: number | null; commitMs: number; flapped: boolean; reset: boolean; disagreeing: number[] }>): PropagationResult {
  const samples = runs.map((r) => r.ms).filter((v): v is number => v !== null);
  const disagreeing: Record<string, number> = {};
  for (const s of runs.flatMap((r) => r.disagreeing)) disagreeing[String(s)] = (disagreeing[String(s)] ?? 0) + 1;
  return {
    kind,
    changes: runs.length,
    propagationMs: percentiles(samples),
    commitMs: percentiles(runs.map((r) => r.commitMs)),
    timeouts: runs.filter((r) => r.ms === null).length,
    flaps: runs.filter((r) => r.flapped).length,
    resets: runs.filter((r) => r.reset).length,
    disagreeing,
    samplesMs: samples.map((v) => round(v, 2)),
  };
}

/** Flips the probe task's policy between allow and deny `changes` times. */
export async function measurePolicyPropagation(o: { seeded: Seeded; databaseUrl: string; probe: (token: string) => Scenario; changes: number }): Promise<PropagationResult> {
  const client = new pg.Client({ connectionString: o.databaseUrl });
  await client.connect();
  const runs = [];
  try {
    const scenario = o.probe(o.seeded.probeToken);
    const set = (yaml: string) => commit(client, "UPDATE tasks SET policy_yaml = $1, policy_version = policy_version + 1 WHERE id = $2", [yaml, o.seeded.probeTaskId]);
    let allowed = true;
    for (let k = 0; k < o.changes; k++) {
      const nextAllowed: boolean = !allowed;
      runs.push(await timeFlip(scenario, (s) => (nextAllowed ? s === 200 : s === 403), () => set(nextAllowed ? ALLOW_POLICY : DENY_POLICY)));
      allowed = nextAllowed;
      await sleep(50);
    }
    if (!allowed) await set(ALLOW_POLICY);
  } finally {
    await client.end();
  }
  return summarise("policy change", runs);
}

/** Issues a token for the probe task, then revokes it (issued_tokens.revoked_at), `changes` times. */
export async function measureRevocation(o: { seeded: Seeded; databaseUrl: string; masterKey: Buffer; probe: (token: string) => Scenario; changes: number }): Promise<PropagationResult> {
  const client = new pg.Client({ connectionString: o.databaseUrl });
  await client.connect();
  const runs = [];
  try {
    for (let k = 0; k < o.changes; k++) {
      const issued = await issueTaskToken(o.seeded.db, o.seeded.admin, deriveProcessKeys(o.masterKey).dashboardKey, IDENTITY, o.seeded.probeTaskId);
      await sleep(100); // let the reload that issuing triggers finish first
      runs.push(await timeFlip(o.probe(issued.token), (s) => s === 407, () => commit(client, "UPDATE issued_tokens SET revoked_at = now() WHERE jti = $1", [issued.jti])));
      await sleep(50);
    }
  } finally {
    await client.end();
  }
  return summarise("token revocation", runs);
}
