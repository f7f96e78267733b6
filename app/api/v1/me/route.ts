import { apiRoute } from "@/lib/http/route";

export const GET = apiRoute("read", async ({ actor }) => ({ actor }));
