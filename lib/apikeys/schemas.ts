import { z } from "zod";
import { ROLES } from "@/lib/auth/roles";
import { visibleName } from "@/lib/validation/text";
import { wholeNumber } from "@/lib/validation/whole-number";

export const apiKeyIdSchema = z.uuid({ error: "Not a valid id." });

export const createApiKeyInput = z.object({
  name: visibleName(z.string({ error: "Enter a name." }).trim().min(1, "Enter a name.").max(100, "Name must be at most 100 characters."), "Name"),
  role: z.enum(ROLES, { error: `Role must be one of: ${ROLES.join(", ")}.` }),
  /** Omitted: the key does not expire (it can still be revoked). */
  expiresInDays: wholeNumber(1, 730, { type: "Expiry must be a whole number of days.", range: "Expiry must be between 1 and 730 days." }).optional(),
});
export type CreateApiKeyInput = z.input<typeof createApiKeyInput>;
