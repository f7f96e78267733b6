/**
 * The audit chain's lock watchdog. Every audit insert takes the chain head's row lock
 * (`audit_events_chain_lock`) and holds it until its transaction ends, so that events are chained
 * in commit order; every kill switch (ending a task, suspending an agent, revoking a token)
 * records its audit event inside its own transaction. Whoever holds a runtime role's database URL
 * could therefore insert one audit event, keep the transaction open (idle, or in `pg_sleep`) and
 * block every kill switch, and the worker's audit, for as long as they liked: the role's own
 * settings (`idle_in_transaction_session_timeout`, `transaction_timeout`) are the session's to
 * change. The watchdog ends any session of its role that has held the lock past `holdLimitMs`:
 * a role may end its own sessions, so no added privilege is needed; each runtime role gets a
 * watchdog of its own, run by the launcher. Bulkhead's own transactions hold the lock for
 * milliseconds (a shipped batch for well under a second), so only a stuck or hostile one is ended;
 * the worker's shipper, if it ever were, reconnects and ships again from its cursor.
 */
import pg from "pg";

export interface ChainWatchdogOptions {
  databaseUrl: string;
  /** How long a transaction may hold the chain's lock (default 5 s). */
  holdLimitMs?: number;
  /** How often to look (default 1 s). */
  intervalMs?: number;
  /** Told of each session ended, and of a failed look (once per distinct message). */
  say: (line: string) => void;
}

export interface EndedSession {
  pid: number;
  role: string;
  heldSeconds: number;
  state: string | null;
}

/**
 * The session of the connected role, other than this one, whose transaction holds the chain
 * head's row lock. The holder is the transaction whose id is the head row's xmax (FOR UPDATE marks
 * it so; the sessions queued behind it are not named there), found through the lock every
 * transaction holds on its own id (a savepoint's too). `pg_stat_activity` shows a role its own
 * sessions.
 */
const HOLDER = `
WITH head AS (SELECT xmax FROM public.audit_chain_head WHERE id = 1)
SELECT a.pid, a.usename::text AS role, head.xmax::text AS xid, a.state
  FROM head
  JOIN pg_locks l ON l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted AND l.transactionid = head.xmax
  JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE head.xmax <> '0'::xid
   AND a.usename = current_user
   AND a.pid <> pg_backend_pid()`;

/** Ends the session (its transaction rolls back: nothing it chained is kept) if it still holds that lock. */
const END = `SELECT pg_terminate_backend($1::int) AS ended
  FROM public.audit_chain_head h, pg_locks l
 WHERE h.id = 1 AND l.pid = $1::int AND l.locktype = 'transactionid' AND l.granted AND l.transactionid = h.xmax AND h.xmax::text = $2`;

const RECORD = `INSERT INTO audit_events (type, actor_type, actor_id, outcome, reason, data) VALUES ('audit.chain_lock_released', 'system', 'chain-watchdog', 'cancel', $1, $2::jsonb)`;

export function startChainWatchdog(o: ChainWatchdogOptions): { stop(): Promise<void>; check(): Promise<EndedSession[]> } {
  const holdLimitMs = o.holdLimitMs ?? 5_000;
  let client: pg.Client | null = null;
  let running: Promise<EndedSession[]> | null = null;
  let stopped = false;
  let lastError = "";

  const connect = async (): Promise<pg.Client> => {
    if (client) return client;
    const c = new pg.Client({ connectionString: o.databaseUrl, application_name: "bulkhead-chain-watchdog", connectionTimeoutMillis: 5_000 });
    c.on("error", () => {
      if (client === c) client = null;
    });
    await c.connect();
    // Its own look never waits long: a look that cannot run is tried again next interval.
    await c.query("SET statement_timeout = 2000");
    client = c;
    return c;
  };

  /**
   * When each holder (pid and transaction) was first seen holding the lock. Hold time is measured
   * from here, not from the transaction's start: a transaction that waited behind a blocker and
   * then holds the lock for a moment is not ended for the time it waited.
   */
  const firstSeen = new Map<string, number>();

  const look = async (): Promise<EndedSession[]> => {
    const c = await connect();
    const now = Date.now();
    const { rows } = await c.query<{ pid: number; role: string; xid: string; state: string | null }>(HOLDER);
    const seen = new Set(rows.map((r) => `${r.pid}:${r.xid}`));
    for (const key of firstSeen.keys()) if (!seen.has(key)) firstSeen.delete(key);
    const ended: EndedSession[] = [];
    for (const r of rows) {
      const key = `${r.pid}:${r.xid}`;
      const since = firstSeen.get(key) ?? now;
      firstSeen.set(key, since);
      if (now - since < holdLimitMs) continue;
      const { rows: done } = await c.query<{ ended: boolean }>(END, [r.pid, r.xid]);
      if (!done[0]?.ended) continue;
      firstSeen.delete(key);
      ended.push({ pid: r.pid, role: r.role, heldSeconds: Math.round((now - since) / 100) / 10, state: r.state });
    }
    for (const s of ended) {
      const reason = `a session of database role ${s.role} (pid ${s.pid}, ${s.state ?? "state unknown"}) held the audit chain's lock for at least ${s.heldSeconds} s, blocking every audit event and kill switch; it was ended and its transaction rolled back`;
      o.say(`Audit chain watchdog: ${reason}.`);
      await c.query(RECORD, [reason, JSON.stringify({ pid: s.pid, role: s.role, heldSeconds: s.heldSeconds, state: s.state, holdLimitMs })]);
    }
    return ended;
  };

  const check = (): Promise<EndedSession[]> => {
    running ??= look()
      .then((ended) => {
        lastError = "";
        return ended;
      })
      .catch((error: unknown) => {
        const message = error instanceof Error ? error.message : String(error);
        if (message !== lastError) o.say(`Audit chain watchdog: could not look for sessions holding the chain's lock: ${message}`);
        lastError = message;
        client?.end().catch(() => undefined);
        client = null;
        return [];
      })
      .finally(() => {
        running = null;
      });
    return running;
  };

  const timer = setInterval(() => {
    if (!stopped) void check();
  }, o.intervalMs ?? 1_000);
  timer.unref();

  return {
    check,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
      await client?.end().catch(() => undefined);
      client = null;
    },
  };
}
