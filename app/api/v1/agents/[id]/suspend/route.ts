import { setAgentSuspended } from "@/lib/agents/agents";
import { getDb } from "@/lib/db/client";
import { AlreadyDoneError } from "@/lib/errors/app-error";
import { apiRoute } from "@/lib/http/route";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

/** Suspended already: 200 with `changed: false` and since when (lib/errors/app-error.ts, AlreadyDoneError). */
export const POST = apiRoute<{ id: string }>("agents:write", async ({ actor, params }) => {
  try {
    return { agent: await setAgentSuspended(getDb(), actor, params.id, true), changed: true };
  } catch (error) {
    if (error instanceof AlreadyDoneError) return { agent: error.current, changed: false, message: error.message };
    throw error;
  }
});

export const { GET, HEAD, PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["POST"]);
