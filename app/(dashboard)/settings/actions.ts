"use server";

import { revalidatePath } from "next/cache";
import { z } from "zod";
import { setApproverScope } from "@/lib/approvals/approver-scope";
import { approversNeeded } from "@/lib/approvals/required";
import { updateApprovalSettings } from "@/lib/approvals/settings";
import { getDb } from "@/lib/db/client";
import { appKeys } from "@/lib/identity/app-keys";
import { rotateKeys } from "@/lib/identity/key-store";
import { formToObject, runAction, type ActionResult, formOf } from "@/lib/http/action";
import { parseDuration } from "@/lib/tasks/duration";
import { MAX_TOKEN_TTL_SECONDS, setMaxTaskTtlSeconds } from "@/lib/tasks/settings";

export async function rotateKeysAction(_prev: ActionResult<null> | null, _form: FormData) {
  return runAction("settings:write", z.object({}), () => ({}), async (actor) => {
    await rotateKeys(getDb(), actor, (await appKeys(getDb())).dashboardKey, { maxTokenTtlSeconds: MAX_TOKEN_TTL_SECONDS });
    revalidatePath("/settings");
    return null;
  });
}

const ttlInput = z.object({
  maxTtl: z.string({ error: "Enter a duration such as 8h." }).refine((v) => parseDuration(v) !== null, "Enter a duration such as 8h or 90m."),
});

export async function setMaxTtlAction(_prev: ActionResult<null> | null, form: FormData) {
  form = formOf(form);
  return runAction("settings:write", ttlInput, () => formToObject(form), async (actor, { maxTtl }) => {
    await setMaxTaskTtlSeconds(getDb(), actor, parseDuration(maxTtl)!);
    revalidatePath("/settings");
    return null;
  });
}

const approvalRulesInput = z.object({
  fourEyes: z.string().optional(),
  write: approversNeeded().default(1),
  destructive: approversNeeded().default(1),
  irreversible: approversNeeded().default(1),
});

export async function setApprovalRulesAction(_prev: ActionResult<null> | null, form: FormData) {
  form = formOf(form);
  return runAction("settings:write", approvalRulesInput, () => formToObject(form), async (actor, data) => {
    await updateApprovalSettings(getDb(), actor, {
      fourEyes: data.fourEyes === "on",
      requiredByEffect: { write: data.write, destructive: data.destructive, irreversible: data.irreversible },
    });
    revalidatePath("/settings");
    return null;
  });
}

const scopeFormInput = z.object({ userId: z.uuid(), services: z.string().max(2000).default("") });

export async function setApproverScopeAction(_prev: ActionResult<null> | null, form: FormData) {
  form = formOf(form);
  return runAction("users:write", scopeFormInput, () => formToObject(form, ["agents"]), async (actor, data) => {
    const services = data.services.split(",").map((s) => s.trim()).filter(Boolean);
    const agents = form.getAll("agents").filter((v): v is string => typeof v === "string");
    await setApproverScope(getDb(), actor, data.userId, { agents, services });
    revalidatePath("/settings");
    return null;
  });
}
