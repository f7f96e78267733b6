"use server";

import { revalidatePath } from "next/cache";
import { z } from "zod";
import { approveAndAllow } from "@/lib/approvals/allow-rule";
import { decideApproval } from "@/lib/approvals/decide-approval";
import { getDb } from "@/lib/db/client";
import { formToObject, runAction, formOf } from "@/lib/http/action";
import { hiddenField, hiddenId } from "@/lib/http/hidden-fields";

const input = z.object({
  id: hiddenId("approval request"),
  verdict: hiddenField(z.enum(["approve", "deny", "approve_allow"]), "This form does not say what was decided (its verdict must be approve, deny or approve_allow), so nothing was decided. Reload the page and try again."),
  note: z.string().trim().max(500).optional() });

export async function decideApprovalAction(_prev: unknown, form: FormData) {
  form = formOf(form);
  return runAction("approvals:decide", input, () => formToObject(form), async (actor, data) => {
    const note = data.note || undefined;
    const outcome = data.verdict === "approve_allow" ? await approveAndAllow(getDb(), actor, data.id, note) : await decideApproval(getDb(), actor, data.id, data.verdict, note);
    revalidatePath("/approvals");
    return { status: outcome.status, approvals: outcome.approvals, required: outcome.required };
  });
}
