"use server";

import { revalidatePath } from "next/cache";
import { z } from "zod";
import { getDb } from "@/lib/db/client";
import { appKeys } from "@/lib/identity/app-keys";
import { rotateKeys } from "@/lib/identity/key-store";
import { formToObject, runAction, type ActionResult } from "@/lib/http/action";
import { parseDuration } from "@/lib/tasks/duration";
import { MAX_TOKEN_TTL_SECONDS, setMaxTaskTtlSeconds } from "@/lib/tasks/settings";

export async function rotateKeysAction(_prev: ActionResult<null> | null, _form: FormData) {
  return runAction("settings:write", z.object({}), {}, async (actor) => {
    await rotateKeys(getDb(), actor, (await appKeys(getDb())).dashboardKey, { maxTokenTtlSeconds: MAX_TOKEN_TTL_SECONDS });
    revalidatePath("/settings");
    return null;
  });
}

const ttlInput = z.object({
  maxTtl: z.string({ error: "Enter a duration such as 8h." }).refine((v) => parseDuration(v) !== null, "Enter a duration such as 8h or 90m."),
});

export async function setMaxTtlAction(_prev: ActionResult<null> | null, form: FormData) {
  return runAction("settings:write", ttlInput, formToObject(form), async (actor, { maxTtl }) => {
    await setMaxTaskTtlSeconds(getDb(), actor, parseDuration(maxTtl)!);
    revalidatePath("/settings");
    return null;
  });
}
