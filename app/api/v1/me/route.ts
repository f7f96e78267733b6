import { apiRoute } from "@/lib/http/route";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

export const GET = apiRoute("read", async ({ actor }) => ({ actor }));

export const { POST, PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["GET"]);
