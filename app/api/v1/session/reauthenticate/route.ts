import { reauthenticateInput, reauthenticateWithPassword } from "@/lib/auth/step-up";
import { loadAppConfig } from "@/lib/config/app";
import { getDb } from "@/lib/db/client";
import { clientAddress } from "@/lib/http/client-address";
import { apiRoute } from "@/lib/http/route";

/** Step-up for session clients of the API; the dashboard's dialog uses the server action. */
export const POST = apiRoute("read", async ({ actor, request, json }) => {
  const { password } = await json(reauthenticateInput);
  const app = loadAppConfig();
  const address = clientAddress(request.headers, { peerToken: app.peerToken, trustedProxies: app.trustedProxies });
  const { authenticatedAt } = await reauthenticateWithPassword(getDb(), actor, password, { address, throttle: app.signInThrottle });
  return { authenticatedAt: authenticatedAt.toISOString() };
});
