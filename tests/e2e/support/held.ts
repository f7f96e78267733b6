import type { Db } from "../../../lib/db/client";
import type { Prisma } from "../../../lib/generated/prisma/client";
import { storedRequest } from "../../../lib/approvals/stored-request";
import { agentStripped } from "../../../proxy-worker/proxy/headers";
import { exampleSqlHttp } from "../../../lib/semantics/descriptors/examples";
import { canonicalizeRequest } from "../../../lib/semantics/canonical";
import { classify } from "../../../lib/semantics/classify";
import { createInventory } from "../../../lib/semantics/inventory";
import { registryWith } from "../../../lib/semantics/registry";
import { unique } from "../../support/factories";

/**
 * A held request recorded exactly as the proxy records one (tests/integration/proxy covers the
 * proxy itself): the raw request is canonicalised and classified by Bulkhead's real semantics
 * (Railway's built-in descriptor, an SQL-over-HTTP service), and kept with its headers and body.
 */
const registry = registryWith([exampleSqlHttp]);
const inventory = createInventory([
  { environment: "production", service: "railway", resources: ["vol_prod"] },
  { environment: "production", service: "pg-http", resources: ["*"] },
]);

export async function holdRequest(
  db: Db,
  options: { ownerId: string; createdById?: string; url: string; body: string; contentType?: string; purpose?: string; requiredApprovals?: number; expiresInMs?: number },
) {
  const canonical = canonicalizeRequest({ method: "POST", url: options.url, headers: { "content-type": options.contentType ?? "application/json" }, body: options.body });
  if (!canonical.ok) throw new Error(canonical.reason);
  const classified = classify(canonical.request, registry, inventory);
  if (!classified.ok) throw new Error(classified.reason);
  const agent = await db.agent.create({ data: { name: unique("held"), ownerId: options.ownerId } });
  const task = await db.task.create({
    data: {
      agentId: agent.id,
      purpose: options.purpose ?? "clean up the staging volumes",
      policyYaml: "rules: []\n",
      scope: "railway:*:irreversible",
      createdById: options.createdById ?? null,
      expiresAt: new Date(Date.now() + 3600_000),
    },
  });
  const approval = await db.approval.create({
    data: {
      taskId: task.id,
      agentId: agent.id,
      requestDigest: "d".repeat(64),
      method: canonical.request.method,
      url: options.url,
      actions: classified.actions as unknown as Prisma.InputJsonValue,
      reason: `${classified.effect} action held for approval`,
      expiresAt: new Date(Date.now() + (options.expiresInMs ?? 600_000)),
      policyVersion: 1,
      requiredApprovals: options.requiredApprovals ?? 1,
      ...storedRequest(canonical.request, (name) => !agentStripped(name)),
    },
  });
  return { approval, agent, task, actions: classified.actions };
}
