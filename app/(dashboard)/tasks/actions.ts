"use server";

import { revalidatePath } from "next/cache";
import { z } from "zod";
import { loadIdentityConfig } from "@/lib/config/identity";
import { getDb } from "@/lib/db/client";
import { appKeys } from "@/lib/identity/app-keys";
import { issueTaskToken, revokeTaskToken } from "@/lib/identity/task-tokens";
import { formOf, formText, formToObject, runAction, type ActionResult } from "@/lib/http/action";
import type { ExplainResult } from "@/lib/policy/explain";
import { simulateInput, simulateRequest, updatePolicyInput, updateTaskPolicy } from "@/lib/tasks/policy";
import { createTask, createTaskInput, endTask } from "@/lib/tasks/tasks";
import { hiddenField, hiddenId } from "@/lib/http/hidden-fields";

export async function createTaskAction(_prev: ActionResult<{ id: string }> | null, form: FormData) {
  form = formOf(form);
  return runAction("tasks:write", createTaskInput, () => formToObject(form), async (actor, data) => {
    const task = await createTask(getDb(), actor, data);
    revalidatePath("/tasks");
    return { id: task.id };
  });
}

const idInput = z.object({ id: hiddenId("task") });

export async function endTaskAction(_prev: ActionResult<null> | null, form: FormData) {
  form = formOf(form);
  return runAction("tasks:write", idInput, () => formToObject(form), async (actor, { id }) => {
    await endTask(getDb(), actor, id);
    revalidatePath(`/tasks/${id}`);
    return null;
  });
}

/** Returns the token once; it is not stored and cannot be shown again. */
export async function mintTokenAction(_prev: ActionResult<{ token: string; expiresAt: string }> | null, form: FormData) {
  form = formOf(form);
  return runAction("tasks:write", idInput, () => formToObject(form), async (actor, { id }) => {
    const issued = await issueTaskToken(getDb(), actor, (await appKeys(getDb())).dashboardKey, loadIdentityConfig(), id);
    revalidatePath(`/tasks/${id}`);
    return { token: issued.token, expiresAt: issued.expiresAt.toISOString() };
  });
}

const revokeInput = z.object({
  jti: hiddenField(z.string().min(16).max(128), "This form does not name a valid token (its token id is missing or malformed), so nothing was revoked. Reload the page and try again."),
  taskId: hiddenId("task"),
});
const policyFormInput = updatePolicyInput.extend({ id: hiddenId("task") });
const simulateFormInput = simulateInput.extend({ taskId: hiddenId("task").optional() });

export async function revokeTokenAction(_prev: ActionResult<null> | null, form: FormData) {
  form = formOf(form);
  return runAction("tasks:write", revokeInput, () => formToObject(form), async (actor, { jti, taskId }) => {
    await revokeTaskToken(getDb(), actor, jti, new Date(), { taskId });
    revalidatePath(`/tasks/${taskId}`);
    return null;
  });
}

export async function updatePolicyAction(_prev: ActionResult<{ policyVersion: number; cancelledApprovals: number }> | null, form: FormData) {
  form = formOf(form);
  return runAction("tasks:write", policyFormInput, () => ({ id: formText(form, "id"), policyYaml: formText(form, "policyYaml"), baseVersion: formText(form, "baseVersion") || undefined }), async (actor, data) => {
    const result = await updateTaskPolicy(getDb(), actor, data.id, data.policyYaml, data.baseVersion);
    revalidatePath(`/tasks/${data.id}`);
    return result;
  });
}

export async function simulateAction(_prev: ActionResult<ExplainResult> | null, form: FormData) {
  form = formOf(form);
  const input = () => {
    const text = (name: string) => formText(form, name) ?? "";
    return { policyYaml: text("policyYaml"), method: text("method"), url: text("url"), body: text("body"), contentType: text("contentType"), taskId: text("taskId") || undefined };
  };
  return runAction("read", simulateFormInput, input, (actor, data) => simulateRequest(getDb(), actor, data));
}
