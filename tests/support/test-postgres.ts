import { startEmbeddedDatabase, EmbeddedDatabaseError, type EmbeddedDatabase, type StartEmbeddedOptions } from "../../lib/db/embedded";

/**
 * Test servers listen below the kernel's ephemeral range (32768-60999 here), where no outgoing
 * connection is ever given a local port: a port picked at random from the ephemeral range can be
 * taken by any client socket of a parallel test between the pick and PostgreSQL's bind.
 */
const LOW = 20000;
const HIGH = 32000;

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
