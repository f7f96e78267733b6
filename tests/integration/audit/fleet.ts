import type { Db } from "@/lib/db/client";
import type { Fleet } from "../../support/audit-events";
import { unique } from "../../support/factories";

/** Agents and tasks for generated audit events (the names the audit page shows instead of ids). */
export async function makeFleet(db: Db, ownerId: string, agents = 3, tasksPerAgent = 2): Promise<Fleet & { names: Map<string, string>; purposes: Map<string, string> }> {
  const fleet: Fleet = { agents: [], tasks: [] };
  const names = new Map<string, string>();
  const purposes = new Map<string, string>();
  for (let a = 0; a < agents; a++) {
    const agent = await db.agent.create({ data: { name: unique(`agent${a}`), ownerId } });
    fleet.agents.push({ id: agent.id, name: agent.name });
    names.set(agent.id, agent.name);
    for (let k = 0; k < tasksPerAgent; k++) {
      const purpose = `purpose ${a}.${k} ${unique("t")}`;
      const task = await db.task.create({ data: { agentId: agent.id, purpose, policyYaml: "rules: []\n", expiresAt: new Date(Date.now() + 3600_000) } });
      fleet.tasks.push({ id: task.id, agentId: agent.id });
      purposes.set(task.id, purpose);
    }
  }
  return { ...fleet, names, purposes };
}
