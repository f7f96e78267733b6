/**
 * CONNECT and raw connections through the request path's own stages (pipeline.ts): a tunnel has
 * no body and no request line of its own, so it skips those stages, and it is never held.
 */
import type { ServiceMatch } from "@/lib/semantics/registry";
import type { ServiceDescriptor } from "@/lib/semantics/descriptors/schema";
import type { AuthenticatedTask } from "../identity/token-verifier";
import type { EnforcementState } from "./enforcement-state";
import type { CheckedDestination } from "./forwarder";
import type { Pipeline } from "./pipeline";
import type { ForwardPlan, ReceivedRequest } from "./types";

/** Who opens a tunnel, and over which connection (what budgets count and kill switches close). */
export type TunnelClient = Pick<ReceivedRequest, "listener" | "clientAddress" | "identity" | "connection">;

const connectRequest = (client: TunnelClient, host: string, port: number): ReceivedRequest => ({
  ...client,
  method: "CONNECT",
  url: `${host}:${port}`,
  headers: {},
  rawHeaders: [],
  body: null,
});

/**
 * A CONNECT to be intercepted: everything that can be decided before `200 Connection
 * Established` is decided here (identity, budgets, destination address, the service's ports
 * and Bulkhead's own ports), so a tunnel that would only ever be refused is never opened. Each
 * request inside it then goes through the whole request path. Refusals are audited like any other.
 */
export async function admitConnect(
  pipeline: Pipeline,
  client: TunnelClient,
  target: { host: string; port: number; scheme: "http" | "https"; descriptor: ServiceDescriptor | null },
  state: EnforcementState | null,
): Promise<{ auth: AuthenticatedTask; destination: CheckedDestination; eventId: string }> {
  const j = await pipeline.begin(connectRequest(client, target.host, target.port), state);
  const auth = await pipeline.authenticate(j, { register: false });
  const request = { method: "CONNECT", scheme: target.scheme, host: target.host, port: target.port, path: "/", query: "", headers: {} };
  const destination = await pipeline.checkDestination(j, auth, { request, descriptor: target.descriptor });
  return { auth, destination, eventId: j.eventId };
}

/**
 * A CONNECT (or a sandbox's raw connection) to a passthrough (host-only) service: one `tunnel`
 * action with the highest effect. A rule must allow irreversible effects on that service with
 * `waive_approval`; tunnels are never held. `match` is the registry's match for the target in
 * `state`, made once by the listener that had to know it anyway.
 */
export async function evaluateTunnel(pipeline: Pipeline, client: TunnelClient, target: { host: string; port: number; match: ServiceMatch }, state: EnforcementState | null): Promise<ForwardPlan> {
  const j = await pipeline.begin(connectRequest(client, target.host, target.port), state);
  const auth = await pipeline.authenticate(j, { register: false });
  const classified = await pipeline.classifyTunnel(j, auth, target);
  const decided = await pipeline.decide(j, auth, classified);
  const destination = await pipeline.checkDestination(j, auth, decided);
  return pipeline.recordDecision(j, auth, decided, destination, null);
}
