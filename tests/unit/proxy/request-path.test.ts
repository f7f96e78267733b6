import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { parseCanonicalScope } from "@/lib/identity/scope";
import { createLogger } from "@/lib/log";
import type { ServiceDescriptor } from "@/lib/semantics/descriptors/schema";
import type { CanonicalRequest } from "@/lib/semantics/types";
import type { TokenVerifier } from "@/proxy-worker/identity/token-verifier";
import type { PolicyVersion } from "@/proxy-worker/policy/snapshot";
import { EnforcementState } from "@/proxy-worker/proxy/enforcement-state";
import type { CheckedDestination } from "@/proxy-worker/proxy/forwarder";
import { Pipeline } from "@/proxy-worker/proxy/pipeline";
import type { DecisionEvent } from "@/proxy-worker/proxy/types";
import { LeafCertificateCache } from "@/proxy-worker/tls/leaf-cache";
import { makeCa } from "../tls/helpers";

const log = createLogger("request-path-test", "silent");
const SANDBOX = "10.200.0.2";
const TASK = "task-1";

function version(n: number, policyYaml: string): PolicyVersion {
  const task = { id: TASK, agentId: "agent-1", policyYaml, policyVersion: n, expiresAt: new Date(Date.now() + 3_600_000), scope: parseCanonicalScope("*:*:irreversible") };
  return {
    version: n,
    loadedAt: new Date(),
    tasks: new Map([[TASK, task]]),
    revocation: { revokedTasks: [], suspendedAgents: [], revokedJtis: [] },
    suspendedAgents: new Set(),
    keys: [],
    services: [],
    inventoryYaml: null,
    sandboxes: new Map([[SANDBOX, TASK]]),
    sandboxBindings: new Map([[SANDBOX, { sandboxId: "sandbox-1", taskId: TASK }]]),
    caId: null,
    issuedJtis: new Map(),
    changed: "all",
  };
}

/**
 * The stages in the order the request path calls them (handler.ts), over one enforcement state,
 * with the sandbox's address as the identity (no token to verify) and an audit that keeps what
 * it is given.
 */
describe("the request path's stages", () => {
  let leaves: LeafCertificateCache;
  const events: DecisionEvent[] = [];
  const checked: Array<{ request: CanonicalRequest; descriptor: ServiceDescriptor | null }> = [];
  let state: EnforcementState;
  const tokens = { authenticate: () => Promise.reject(new Error("no token in these requests")), revoked: () => null } as unknown as TokenVerifier;
  const pipeline = new Pipeline({
    state: () => state,
    tokens,
    audit: { record: async (e) => void events.push(e) },
    holds: { hold: () => Promise.reject(new Error("nothing is held here")) },
    destinations: {
      check: async (request, descriptor) => {
        checked.push({ request, descriptor });
        return { address: "192.0.2.10", family: 4 } as unknown as CheckedDestination;
      },
    },
  });
  const received = (url: string) => ({
    listener: "transparent" as const,
    clientAddress: SANDBOX,
    identity: { kind: "sandbox" as const, sourceAddress: SANDBOX },
    method: "GET",
    url,
    headers: { host: new URL(url).host },
    rawHeaders: ["Host", new URL(url).host],
    body: null,
  });
  const run = async (url: string) => {
    const j = await pipeline.begin(received(url));
    const auth = await pipeline.authenticate(j);
    const body = await pipeline.readBody(j, auth);
    const canonical = await pipeline.canonicalise(j, auth, body);
    const classified = await pipeline.classify(j, auth, canonical);
    const decided = await pipeline.decide(j, auth, classified);
    const destination = await pipeline.checkDestination(j, auth, decided);
    const approval = await pipeline.hold(j, auth, decided);
    return pipeline.recordDecision(j, auth, decided, destination, approval);
  };

  beforeAll(async () => {
    leaves = new LeafCertificateCache({ ca: (await makeCa()).issuing });
    state = new EnforcementState(version(1, "unlisted: deny\nrules:\n  - service: github\n    effects: [read]\n"), { credentials: new Map(), credentialError: null, leaves, caId: null }, log);
  });
  afterEach(() => {
    vi.restoreAllMocks();
    events.length = 0;
    checked.length = 0;
  });

  it("refuse every request, audited, once the policy snapshot has been stale for too long", async () => {
    let tooStale = true;
    const stalePipeline = new Pipeline({
      state: () => state,
      tokens,
      audit: { record: async (e) => void events.push(e) },
      holds: { hold: () => Promise.reject(new Error("nothing is held here")) },
      destinations: { check: async () => ({ address: "192.0.2.10", family: 4 }) as unknown as CheckedDestination },
      policyTooStale: () => tooStale,
    });
    const refused = await stalePipeline.begin(received("https://api.github.com/repos/acme/app")).then(
      () => null,
      (e: unknown) => e as { code?: string; status?: number },
    );
    expect([refused?.status, refused?.code]).toEqual([503, "policy_stale"]);
    expect(events.map((e) => (e.data as { code?: string }).code)).toContain("policy_stale");
    tooStale = false;
    await expect(stalePipeline.begin(received("https://api.github.com/repos/acme/app"))).resolves.toBeTruthy();
  });

  // A listener names an IPv6 destination without brackets; the canonical host has them: every
  // request to an IPv6 literal from a sandbox was refused as authority_mismatch, never judged.
  it("accept a request for the IPv6 literal its tunnel was authorised for", async () => {
    const j = await pipeline.begin({ ...received("http://[2001:db8::7]/x"), tunnelAuthority: { host: "2001:db8::7", port: 80 } });
    const auth = await pipeline.authenticate(j);
    const canonical = await pipeline.canonicalise(j, auth, null);
    expect(canonical.request.host).toBe("[2001:db8::7]");
    const other = await pipeline.begin({ ...received("http://[2001:db8::8]/x"), tunnelAuthority: { host: "2001:db8::7", port: 80 } });
    await expect(pipeline.canonicalise(other, await pipeline.authenticate(other), null)).rejects.toMatchObject({ code: "authority_mismatch" });
  });

  it("match the service registry once per request, and check the destination against that match's service", async () => {
    const match = vi.spyOn(state.registry, "match");
    const plan = await run("https://api.github.com/repos/acme/app");
    expect(match).toHaveBeenCalledTimes(1);
    expect(plan.descriptor?.id).toBe("github");
    expect(checked.map((c) => c.descriptor?.id)).toEqual(["github"]);
    expect(plan.url).toBe("https://api.github.com/repos/acme/app");
    expect(events.map((e) => [e.type, e.outcome])).toEqual([["proxy.decision", "allow"]]);
  });

  it("judge a request by the state it began with, even when a new policy version is swapped in meanwhile", async () => {
    const j = await pipeline.begin(received("https://api.github.com/repos/acme/app"));
    const auth = await pipeline.authenticate(j);
    const first = state;
    // The next version denies everything; the request in progress keeps its own state's policy.
    state = new EnforcementState(version(2, "unlisted: deny\nrules: []\n"), first, log, first);
    try {
      const canonical = await pipeline.canonicalise(j, auth, await pipeline.readBody(j, auth));
      const decided = await pipeline.decide(j, auth, await pipeline.classify(j, auth, canonical));
      expect(j.state).toBe(first);
      expect(decided.decision.decision).toBe("allow");
      // A new request is judged by the new state.
      await expect(run("https://api.github.com/repos/acme/app")).rejects.toMatchObject({ code: "policy_deny" });
    } finally {
      state = first;
    }
  });

  it("a state is never changed: new credentials make a new state that shares the registry and compiled policies", async () => {
    const task = state.snapshot.tasks.get(TASK)!;
    const a = state.policyFor(task);
    const creds = new Map([["https://api.github.com:443", { name: "gh" }]]) as unknown as EnforcementState["credentials"];
    const next = state.with({ credentials: creds });
    expect(next).not.toBe(state);
    expect(state.credentials.size).toBe(0);
    expect(next.credentials).toBe(creds);
    expect(next.registry).toBe(state.registry);
    expect(next.leaves).toBe(leaves);
    const b = next.policyFor(task);
    expect("policy" in a && "policy" in b && a.policy === b.policy).toBe(true);
  });
});
