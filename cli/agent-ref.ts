import type pg from "pg";
import type { Db } from "@/lib/db/client";
import { AppError } from "@/lib/errors/app-error";

/*
 * Commands that name an agent (`agent suspend`, `task create --agent`, `task list --agent`) take
 * its id or its name, as `agent list` prints both: names are unique. An id is passed through as
 * given (the domain refuses one that names no agent); a name that no agent has is refused here.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The agent's id for `ref` (an id, or a name), read with Prisma. */
export async function agentIdOf(db: Pick<Db, "agent">, ref: string): Promise<string> {
  if (UUID.test(ref)) return ref;
  const agent = await db.agent.findUnique({ where: { name: ref }, select: { id: true } });
  return agent?.id ?? unknown(ref);
}

/** The same, on a plain `pg` connection (listing commands do not start Prisma). */
export async function agentIdOfSql(client: pg.Client, ref: string): Promise<string> {
  if (UUID.test(ref)) return ref;
  const { rows } = await client.query<{ id: string }>("SELECT id::text AS id FROM agents WHERE name = $1", [ref]);
  return rows[0]?.id ?? unknown(ref);
}

function unknown(ref: string): never {
  throw new AppError("NOT_FOUND", `No such agent: none has the id or name ${JSON.stringify(ref)} (bulkhead agent list shows them).`);
}
