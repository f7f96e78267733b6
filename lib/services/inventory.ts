import type { Db } from "@/lib/db/client";
import { recordAuditEvent } from "@/lib/audit/record";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { requireStepUp } from "@/lib/auth/step-up";
import { AppError } from "@/lib/errors/app-error";
import { parseInventoryYaml } from "@/lib/semantics/inventory";
import { normalizeLineEndings } from "@/lib/validation/line-endings";

/** The environment inventory is one YAML document (see docs/policy.md), kept in `settings`. */
export const INVENTORY_SETTING = "inventory.yaml";

export async function getInventoryYaml(db: Pick<Db, "setting">): Promise<string> {
  const row = await db.setting.findUnique({ where: { key: INVENTORY_SETTING } });
  return typeof row?.value === "string" ? row.value : "entries: []\n";
}

/**
 * Replaces the inventory. `base`, when given, is the text the editor started from: a save over
 * an inventory changed since (another person's save) is refused instead of silently undoing it.
 */
export async function setInventoryYaml(db: Db, actor: Actor, sentYaml: string, base?: string): Promise<void> {
  assertCan(actor, "settings:write");
  const yaml = normalizeLineEndings(sentYaml);
  if (yaml.length > 200_000) throw new AppError("INVALID_INPUT", "The inventory is too large.");
  const parsed = parseInventoryYaml(yaml);
  if (!parsed.ok) {
    throw new AppError("INVALID_INPUT", "The inventory is not valid.", { details: { fieldErrors: { inventoryYaml: parsed.errors } } });
  }
  // Moving a resource from production to staging widens every policy that allows staging.
  const stepUp = requireStepUp(actor, "change the environment inventory");
  await db.$transaction(async (tx) => {
    if (base !== undefined) {
      // One save at a time: the row (or, before the first save, the lock of its key) is held until commit.
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${INVENTORY_SETTING}))`;
      const now = await getInventoryYaml(tx);
      if (normalizeLineEndings(now) !== normalizeLineEndings(base)) {
        throw new AppError("CONFLICT", "The inventory changed since you opened it. Nothing was saved: reload to see the current inventory, then apply your change to it.", { details: { fieldErrors: { inventoryYaml: ["The inventory changed since you opened it (someone else saved it). Nothing was saved."] } } });
      }
    }
    await tx.setting.upsert({ where: { key: INVENTORY_SETTING }, create: { key: INVENTORY_SETTING, value: yaml }, update: { value: yaml } });
    await recordAuditEvent(tx, { type: "inventory.changed", actor, data: { entries: parsed.inventory.entries.length, stepUp } });
  });
}
