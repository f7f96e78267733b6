import { randomUUID } from "node:crypto";
import type { Db } from "@/lib/db/client";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { requireStepUp } from "@/lib/auth/step-up";
import { recordAuditEvent } from "@/lib/audit/record";
import { sealTo, type BoxRecipient } from "@/lib/crypto/sealed-box";
import { isUniqueViolation } from "@/lib/db/errors";
import { AppError } from "@/lib/errors/app-error";
import { assertSealingKeyCurrent } from "@/lib/keys/generation";
import { loadRegistry } from "@/lib/services/registry-source";
import { endpointService } from "./binding";
import { DEFAULT_PORTS, serviceKey } from "./host";
import { addCredentialInput, type AddCredentialInput } from "./schemas";
import { credentialAad, credentialSelect, toCredentialView, type CredentialView } from "./view";

// One lock for all credential additions: they are rare, and it makes "one credential per
// service" hold under concurrency without a unique index on (scheme, host, port).
const ADD_LOCK = 0x6268_7663; // "bhvc"

/**
 * Stores an upstream credential, sealed to the worker's public key and bound to its row id (aad):
 * whoever stores it (the dashboard, the CLI) cannot read it back; only the worker opens it.
 * One credential per endpoint: the proxy must never have to guess which one to inject. It
 * serves one service (its host's), and only in the environments listed.
 */
export async function addCredential(db: Db, actor: Actor, worker: BoxRecipient, input: AddCredentialInput): Promise<CredentialView> {
  assertCan(actor, "credentials:write");
  const data = addCredentialInput.parse(input);
  const stepUp = requireStepUp(actor, "add a vault credential");
  const port = data.port ?? DEFAULT_PORTS[data.scheme];
  const service = serviceKey(data.scheme, data.host, port);
  const endpoint = endpointService((await loadRegistry(db)).registry, data.scheme, data.host, port, data.serviceId);
  if (!endpoint.ok) throw new AppError("INVALID_INPUT", endpoint.message, { details: { fieldErrors: { serviceId: [endpoint.message] } } });
  const id = randomUUID();
  const secretSealed = sealTo(worker, data.secret, credentialAad(id));
  try {
    return await db.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${ADD_LOCK}::int)`;
      // Refuse a worker key other than the data's (e.g. a dashboard still running after a
      // master-key rotation), before writing something the worker could not open.
      await assertSealingKeyCurrent(tx, { worker: worker.fingerprint });
      const existing = await tx.credential.findFirst({
        where: { scheme: data.scheme, host: data.host, port },
        select: { name: true },
      });
      if (existing) {
        const message = `The credential ${existing.name} is already bound to ${service}; rotate, rebind or delete it instead.`;
        throw new AppError("CONFLICT", message, { details: { fieldErrors: { host: [message] } } });
      }
      // Names that differ only in case read as one credential in the dashboard and the audit
      // log; under the lock above, so two such names cannot be added at the same moment.
      const [twin] = await tx.$queryRaw<Array<{ name: string }>>`SELECT "name" FROM "credentials" WHERE lower("name") = lower(${data.name}) LIMIT 1`;
      if (twin && twin.name !== data.name) {
        const message = `A credential named ${twin.name} already exists (names that differ only in case are one name).`;
        throw new AppError("CONFLICT", message, { details: { fieldErrors: { name: [message] } } });
      }
      const row = await tx.credential.create({
        data: {
          id,
          name: data.name,
          scheme: data.scheme,
          host: data.host,
          port,
          serviceId: endpoint.serviceId,
          environments: data.environments,
          headerTemplate: data.headerTemplate,
          secretSealed,
          createdById: actor.kind === "user" ? actor.userId : actor.kind === "api_key" ? actor.createdById : null,
        },
        select: credentialSelect,
      });
      const view = toCredentialView(row);
      await recordAuditEvent(tx, {
        type: "credential.added",
        actor,
        data: { credentialId: id, name: view.name, service, serviceId: endpoint.serviceId, environments: view.environments, headerName: view.headerName, stepUp },
      });
      return view;
    });
  } catch (error) {
    if (isUniqueViolation(error)) {
      const message = `A credential named ${data.name} already exists.`;
      throw new AppError("CONFLICT", message, { details: { fieldErrors: { name: [message] } } });
    }
    throw error;
  }
}
