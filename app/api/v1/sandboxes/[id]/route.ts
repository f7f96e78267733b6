import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";
import { getSandbox, stopSandbox } from "@/lib/sandboxes/sandboxes";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

export const GET = apiRoute<{ id: string }>("read", async ({ actor, params }) => ({ sandbox: await getSandbox(getDb(), actor, params.id) }));

/** Stops the sandbox: its binding goes at once; a local sandbox's launcher tears it down. */
export const DELETE = apiRoute<{ id: string }>("tasks:write", async ({ actor, params }) => ({ sandbox: await stopSandbox(getDb(), actor, params.id, "stopped through the API") }));

export const { POST, PUT, PATCH, OPTIONS } = methodsNotAllowed(["GET", "DELETE"]);
