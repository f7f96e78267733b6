import pg from "pg";
import { startEmbeddedDatabase, EmbeddedDatabaseError, type EmbeddedDatabase, type StartEmbeddedOptions } from "../../lib/db/embedded";

/**
 * Test servers listen below the kernel's ephemeral range (32768-60999 here), where no outgoing
 * connection is ever given a local port: a port picked at random from the ephemeral range can be
 * taken by any client socket of a parallel test between the pick and PostgreSQL's bind.
 */
const LOW = 30000;
const HIGH = 32000; // tests/support/free-port.ts hands out 20000-29999

/**
 * Starts an embedded PostgreSQL for a test on a random port outside the ephemeral range, and on
 * another one if that port is taken (another test's server, by chance) — a few times, then the
 * error stands.
 */
export async function startTestPostgres(options: Omit<StartEmbeddedOptions, "port">): Promise<EmbeddedDatabase> {
  for (let attempt = 1; ; attempt++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
    try {
      return await startEmbeddedDatabase({ ...options, port });
    } catch (error) {
      const taken = error instanceof EmbeddedDatabaseError && /already in use/.test(error.message);
      if (!taken || attempt >= 8) throw error;
    }
  }
}

/**
 * For a run's shared throwaway server only: PostgreSQL stops asking the kernel to flush its writes
 * to disk (fsync = off). That flush is what makes a commit survive the machine losing power, which
 * no test does; a server that is killed still finds everything it wrote in the kernel's cache, so
 * what tests observe (commits, crash recovery) is unchanged. Measured here: dropping a test file's
 * database took 1.5-2.3 s with it (waiting on the disk) and 0.25 s without; creating one, 40% less.
 */
export async function skipDiskFlushes(adminUrl: string): Promise<void> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    await c.query("ALTER SYSTEM SET fsync = off");
    await c.query("SELECT pg_reload_conf()");
  } finally {
    await c.end();
  }
}
