import type { Db } from "@/lib/db/client";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { requireStepUp } from "@/lib/auth/step-up";
import { recordAuditEvent } from "@/lib/audit/record";
import { sealTo, type BoxRecipient } from "@/lib/crypto/sealed-box";
import { AppError } from "@/lib/errors/app-error";
import { assertSealingKeyCurrent } from "@/lib/keys/generation";
import { secretProblem } from "./header-template";
import { credentialIdSchema, encodingOf, rotateCredentialInput } from "./schemas";
import { RETIRED_SECRETS_DEFAULTS, type RetiredSecretsConfig } from "@/lib/config/retired-secrets";
import { retireSecret, type RetiringCredential } from "./retired-secrets";
import { credentialAad, credentialSelect, toCredentialView, type CredentialView } from "./view";

/**
 * Replaces a credential's secret (sealed to the worker's key, like addCredential); name, service
 * and template stay. A missing and a malformed id look alike. The replaced secret is kept as
 * retired (retired-secrets.ts), in the same transaction, within `retired`'s bounds.
 */
export async function rotateCredential(db: Db, actor: Actor, worker: BoxRecipient, id: string, newSecret: string, retired: RetiredSecretsConfig = RETIRED_SECRETS_DEFAULTS): Promise<CredentialView> {
  assertCan(actor, "credentials:write");
  const { secret } = rotateCredentialInput.parse({ secret: newSecret });
  const parsedId = credentialIdSchema.safeParse(id);
  if (!parsedId.success) throw new AppError("NOT_FOUND", "No such credential.");
  const stepUp = requireStepUp(actor, "rotate a vault credential");
  return db.$transaction(async (tx) => {
    await assertSealingKeyCurrent(tx, { worker: worker.fingerprint });
    // Lock the row: a concurrent delete or rotation waits for this one instead of racing it.
    // The sealed secret is read only to be kept as the retired one (this process cannot open it).
    const [current] = await tx.$queryRaw<Array<{ name: string; service_id: string | null; scheme: string; host: string; port: number; header_template: string; secret_sealed: string }>>`
      SELECT name, service_id, scheme, host, port, header_template, secret_sealed FROM credentials WHERE id = ${parsedId.data}::uuid FOR UPDATE`;
    if (!current) throw new AppError("NOT_FOUND", "No such credential.");
    const encoding = encodingOf(current.header_template);
    const problem = encoding ? secretProblem(secret, encoding) : "The stored header template is invalid; delete and re-add the credential.";
    if (problem) throw new AppError("INVALID_INPUT", problem, { details: { fieldErrors: { secret: [problem] } } });
    const row = await tx.credential.update({
      where: { id: parsedId.data },
      data: { secretSealed: sealTo(worker, secret, credentialAad(parsedId.data)), rotatedAt: new Date() },
      select: credentialSelect,
    });
    // The replaced secret stays redacted (an upstream's request log can still show it), never injected.
    await retireSecret(tx, retiringOf(parsedId.data, current), "rotated", retired);
    const view = toCredentialView(row);
    await recordAuditEvent(tx, { type: "credential.rotated", actor, data: { credentialId: view.id, name: view.name, service: view.service, stepUp } });
    return view;
  });
}

function retiringOf(id: string, row: { name: string; service_id: string | null; scheme: string; host: string; port: number; header_template: string; secret_sealed: string }): RetiringCredential {
  return { id, name: row.name, serviceId: row.service_id, scheme: row.scheme, host: row.host, port: row.port, headerTemplate: row.header_template, secretSealed: row.secret_sealed };
}
