import pg from "pg";

/** Runs `fn` with a plain pg client on `url`. */
export async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/**
 * Tampers as the table owner can: with the audit triggers (append-only, chain, head guard)
 * switched off for one transaction.
 */
export async function tamper(url: string, sql: string, params: unknown[] = []): Promise<void> {
  await withClient(url, async (c) => {
    await c.query("BEGIN");
    await c.query("ALTER TABLE audit_events DISABLE TRIGGER USER");
    await c.query("ALTER TABLE audit_chain_head DISABLE TRIGGER USER");
    await c.query("ALTER TABLE audit_checkpoints DISABLE TRIGGER USER");
    await c.query(sql, params);
    await c.query("ALTER TABLE audit_events ENABLE TRIGGER USER");
    await c.query("ALTER TABLE audit_chain_head ENABLE TRIGGER USER");
    await c.query("ALTER TABLE audit_checkpoints ENABLE TRIGGER USER");
    await c.query("COMMIT");
  });
}

/** Makes the database unavailable for real: refuse new connections and cut the existing ones. */
export class DatabaseOutage {
  private readonly name: string;
  private readonly adminUrl: string;
  constructor(url: string) {
    this.name = new URL(url).pathname.slice(1);
    const u = new URL(url);
    u.pathname = "/postgres";
    this.adminUrl = u.toString();
  }
  async begin(): Promise<void> {
    await withClient(this.adminUrl, async (c) => {
      await c.query(`ALTER DATABASE "${this.name}" ALLOW_CONNECTIONS false`);
      await c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [this.name]);
    });
  }
  async end(): Promise<void> {
    await withClient(this.adminUrl, (c) => c.query(`ALTER DATABASE "${this.name}" ALLOW_CONNECTIONS true`));
  }
}

export async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what = "condition"): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Every event id in the table with how often it occurs, in chain order. */
export async function eventIds(url: string): Promise<Array<{ seq: bigint; eventId: string | null }>> {
  return withClient(url, async (c) => {
    const { rows } = await c.query<{ seq: string; event_id: string | null }>("SELECT seq::text AS seq, data->>'eventId' AS event_id FROM audit_events ORDER BY audit_events.seq");
    return rows.map((r) => ({ seq: BigInt(r.seq), eventId: r.event_id }));
  });
}
