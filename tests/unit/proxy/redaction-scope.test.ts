import { describe, expect, it } from "vitest";
import { redactionForms } from "@/proxy-worker/proxy/redaction-scope";
import type { RetiredSecretSet } from "@/lib/vault/retired-secrets";
import type { SemanticAction } from "@/lib/semantics/types";
import type { InjectableCredential } from "@/lib/vault/load-for-injection";

const credential = (id: string, serviceId: string | null, secret: string, environments: string[] = []): InjectableCredential => ({
  credentialId: id,
  name: id,
  serviceId,
  environments,
  headerName: "authorization",
  headerValue: `Bearer ${secret}`,
  secretForms: [secret],
});

const action = (service: string): SemanticAction => ({ service, environment: "unknown", resource: "r", operation: "read", effect: "read" }) as unknown as SemanticAction;

describe("redactionForms: whose secrets an answer is redacted of", () => {
  it("every credential a service has, not one of them, when the answer comes from another of its endpoints", () => {
    // A service with one credential per environment (or per host): an endpoint of it that has no
    // credential of its own can show what any of them was sent.
    const credentials = new Map([
      ["http://api.multi.test:80", credential("staging", "multi", "staging-secret-0000", ["staging"])],
      ["http://prod.multi.test:80", credential("production", "multi", "production-secret-1111", ["production"])],
      ["http://other.test:80", credential("other", "other", "other-secret-2222")],
    ]);
    const forms = redactionForms(credentials, undefined, [action("multi")]);
    expect([...(forms ?? [])].sort()).toEqual(["production-secret-1111", "staging-secret-0000"]);
  });

  it("the endpoint's own credential with those of the services acted on; nothing for unknown hosts", () => {
    const own = credential("own", null, "own-secret-3333");
    const credentials = new Map([
      ["http://own.test:80", own],
      ["http://a.test:80", credential("a", "svc-a", "a-secret-4444")],
      ["http://u.test:80", credential("u", "unknown", "unknown-secret-5555")],
    ]);
    expect([...(redactionForms(credentials, own, [action("svc-a")]) ?? [])].sort()).toEqual(["a-secret-4444", "own-secret-3333"]);
    expect(redactionForms(credentials, undefined, [action("unknown")])).toBeNull();
    // The same credentials give the same array (its compiled pattern is reused).
    expect(redactionForms(credentials, own, [action("svc-a")])).toBe(redactionForms(credentials, own, [action("svc-a")]));
  });

  it("secrets credentials no longer inject: those of the services acted on and of the endpoint, with the live ones", () => {
    const live = credential("live", "svc-a", "live-secret-6666");
    const credentials = new Map([["http://a.test:80", live]]);
    const retired: RetiredSecretSet = {
      byService: new Map([
        ["svc-a", ["rotated-away-7777", "deleted-8888"]],
        ["svc-b", ["other-service-9999"]],
      ]),
      byEndpoint: new Map([["http://gone.test:80", ["deleted-unknown-0000"]]]),
      count: 4,
    };
    expect([...(redactionForms(credentials, live, [action("svc-a")], retired, "http://a.test:80") ?? [])].sort()).toEqual(["deleted-8888", "live-secret-6666", "rotated-away-7777"]);
    // A service whose every credential was deleted: its retired secrets alone.
    expect(redactionForms(credentials, undefined, [action("svc-b")], retired, "http://b.test:80")).toEqual(["other-service-9999"]);
    // A host no service describes: the endpoint's.
    expect(redactionForms(credentials, undefined, [action("unknown")], retired, "http://gone.test:80")).toEqual(["deleted-unknown-0000"]);
    expect(redactionForms(credentials, undefined, [action("unknown")], retired, "http://elsewhere.test:80")).toBeNull();
    // Cached per loaded set: the same array again, another for another set.
    const again = redactionForms(credentials, live, [action("svc-a")], retired, "http://a.test:80");
    expect(redactionForms(credentials, live, [action("svc-a")], retired, "http://a.test:80")).toBe(again);
    expect(redactionForms(credentials, live, [action("svc-a")], { ...retired }, "http://a.test:80")).not.toBe(again);
  });
});
