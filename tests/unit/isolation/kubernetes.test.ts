import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";

/**
 * The Kubernetes example must keep layer 3's shape: everything in the agents' namespace is denied
 * in both directions by default, and agent pods may reach only the worker's proxy ports and its
 * resolver, with no rule that opens anything else (no ipBlock, no empty peer, no portless rule).
 */
interface Port {
  protocol: string;
  port: number;
}
interface Peer {
  ipBlock?: unknown;
  podSelector?: { matchLabels?: Record<string, string> };
  namespaceSelector?: { matchLabels?: Record<string, string> };
}
interface EgressRule {
  to?: Peer[];
  ports?: Port[];
}
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec: { podSelector?: Record<string, unknown>; policyTypes?: string[]; ingress?: unknown[]; egress?: EgressRule[] };
}

const docs = parseAllDocuments(readFileSync("deploy/kubernetes/agent-sandbox.yaml", "utf8")).map((d) => d.toJS() as Manifest);
const policies = docs.filter((d) => d.kind === "NetworkPolicy");

describe("deploy/kubernetes/agent-sandbox.yaml", () => {
  it("parses, and every policy lives in the agents' namespace", () => {
    expect(docs.every((d) => typeof d.apiVersion === "string" && typeof d.kind === "string")).toBe(true);
    expect(policies.length).toBeGreaterThanOrEqual(2);
    expect(policies.every((p) => p.metadata.namespace === "agents")).toBe(true);
  });
  it("denies all ingress and egress by default", () => {
    const deny = policies.find((p) => Object.keys(p.spec.podSelector ?? {}).length === 0);
    expect(deny?.spec.policyTypes).toEqual(expect.arrayContaining(["Ingress", "Egress"]));
    expect(deny?.spec.ingress ?? []).toEqual([]);
    expect(deny?.spec.egress ?? []).toEqual([]);
  });
  it("lets agent pods reach only the worker's proxy and resolver ports", () => {
    const egress = policies.flatMap((p) => p.spec.egress ?? []);
    expect(egress.length).toBeGreaterThan(0);
    for (const rule of egress) {
      expect(rule.to?.length).toBeGreaterThan(0);
      for (const peer of rule.to ?? []) {
        expect(peer.ipBlock).toBeUndefined();
        expect(peer.podSelector?.matchLabels?.["app.kubernetes.io/name"]).toBe("bulkhead-worker");
        expect(peer.namespaceSelector?.matchLabels?.["kubernetes.io/metadata.name"]).toBe("bulkhead");
      }
      expect(rule.ports?.length).toBeGreaterThan(0);
      for (const port of rule.ports ?? []) expect([8080, 8082, 8443, 15053]).toContain(port.port);
    }
    const udp = egress.flatMap((r) => r.ports ?? []).filter((p) => p.protocol === "UDP");
    expect(udp.map((p) => p.port)).toEqual([15053]);
  });
});
