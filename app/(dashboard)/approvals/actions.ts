"use server";

import { revalidatePath } from "next/cache";
import { z } from "zod";
import { decideApproval } from "@/lib/approvals/decide-approval";
import { getDb } from "@/lib/db/client";
import { formToObject, runAction, type ActionResult } from "@/lib/http/action";

const input = z.object({ id: z.uuid(), verdict: z.enum(["approve", "deny"]), note: z.string().max(500).optional() });

export async function decideApprovalAction(_prev: ActionResult<null> | null, form: FormData) {
  return runAction("approvals:decide", input, formToObject(form), async (actor, data) => {
    await decideApproval(getDb(), actor, data.id, data.verdict, data.note);
    revalidatePath("/approvals");
    return null;
  });
}
