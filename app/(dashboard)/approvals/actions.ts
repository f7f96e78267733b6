"use server";

import { revalidatePath } from "next/cache";
import { z } from "zod";
import { decideApproval } from "@/lib/approvals/decide-approval";
import { getDb } from "@/lib/db/client";
import { formToObject, runAction } from "@/lib/http/action";

const input = z.object({ id: z.uuid(), verdict: z.enum(["approve", "deny"]), note: z.string().trim().max(500).optional() });

export async function decideApprovalAction(_prev: unknown, form: FormData) {
  return runAction("approvals:decide", input, formToObject(form), async (actor, data) => {
    const outcome = await decideApproval(getDb(), actor, data.id, data.verdict, data.note || undefined);
    revalidatePath("/approvals");
    return { status: outcome.status, approvals: outcome.approvals, required: outcome.required };
  });
}
