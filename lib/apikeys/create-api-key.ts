import type { Db } from "@/lib/db/client";
import { actorRole, type Actor } from "@/lib/auth/actor";
import { requireStepUp } from "@/lib/auth/step-up";
import { recordAuditEvent } from "@/lib/audit/record";
import { isUniqueViolation } from "@/lib/db/errors";
import { AppError } from "@/lib/errors/app-error";
import { generateApiKey } from "./format";
import { assertCanManageApiKeys } from "./manage";
import { roleWithin } from "./roles";
import { createApiKeyInput, type CreateApiKeyInput } from "./schemas";
import { apiKeySelect, toApiKeyView, type ApiKeyView } from "./view";

const DAY_MS = 24 * 60 * 60 * 1000;

/** Creates an API key. The returned `key` is the only time it exists outside its holder. */
export async function createApiKey(db: Db, actor: Actor, input: CreateApiKeyInput): Promise<{ apiKey: ApiKeyView; key: string }> {
  assertCanManageApiKeys(actor);
  const data = createApiKeyInput.parse(input);
  // Never more privilege than the creator holds (an admin, holding everything, may create any role).
  if (!roleWithin(data.role, actorRole(actor))) {
    const message = `You cannot create a key with role ${data.role}, which grants more than your own role.`;
    throw new AppError("FORBIDDEN", message, { details: { fieldErrors: { role: [message] } } });
  }
  const stepUp = requireStepUp(actor, "create an API key");
  const now = new Date();
  const expiresAt = data.expiresInDays ? new Date(now.getTime() + data.expiresInDays * DAY_MS) : null;
  for (let attempt = 0; ; attempt++) {
    const generated = generateApiKey();
    try {
      return await db.$transaction(async (tx) => {
        const row = await tx.apiKey.create({
          data: {
            name: data.name,
            prefix: generated.prefix,
            keyHash: generated.hash,
            role: data.role,
            createdById: actor.kind === "user" ? actor.userId : null,
            createdAt: now,
            expiresAt,
          },
          select: apiKeySelect,
        });
        await recordAuditEvent(tx, {
          type: "api_key.created",
          actor,
          data: { apiKeyId: row.id, name: row.name, role: row.role, prefix: row.prefix, expiresAt: expiresAt?.toISOString() ?? null, stepUp },
        });
        return { apiKey: toApiKeyView(row, now), key: generated.key };
      });
    } catch (error) {
      // A prefix collision (36^8 space) is rare; draw again.
      if (isUniqueViolation(error) && attempt < 3) continue;
      throw error;
    }
  }
}
