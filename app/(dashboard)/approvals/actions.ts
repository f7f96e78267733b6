"use server";

import { revalidatePath } from "next/cache";
import { z } from "zod";
import { approveAndAllow } from "@/lib/approvals/allow-rule";
import { decideApproval } from "@/lib/approvals/decide-approval";
import { getDb } from "@/lib/db/client";
import { formToObject, runAction, formOf } from "@/lib/http/action";

const input = z.object({ id: z.uuid(), verdict: z.enum(["approve", "deny", "approve_allow"]), note: z.string().trim().max(500).optional() });

export async function decideApprovalAction(_prev: unknown, form: FormData) {
  form = formOf(form);
  return runAction("approvals:decide", input, formToObject(form), async (actor, data) => {
    const note = data.note || undefined;
    const outcome = data.verdict === "approve_allow" ? await approveAndAllow(getDb(), actor, data.id, note) : await decideApproval(getDb(), actor, data.id, data.verdict, note);
    revalidatePath("/approvals");
    return { status: outcome.status, approvals: outcome.approvals, required: outcome.required };
  });
}
