import { describe, expect, it } from "vitest";
import { decide } from "@/lib/policy/decide";
import { normalizePolicy, policySchema } from "@/lib/policy/schema";
import { compilePolicy } from "@/lib/policy/compiled";
import { canonicalizeRequest } from "@/lib/semantics/canonical";
import { classify } from "@/lib/semantics/classify";
import { createInventory } from "@/lib/semantics/inventory";
import { registryWith } from "@/lib/semantics/registry";
import { canonical, classifyRequest } from "./support";

const GH = "https://api.github.com";
/** "GET only": the policy a person writes when they mean exactly these GET operations. */
const getOnly = compilePolicy(
  normalizePolicy(policySchema.parse({ rules: [{ service: "github", operations: ["repos.get", "issues.list", "pulls.get"], effects: ["read"] }] })),
);
const decision = (method: string, url: string, headers: Record<string, string> = {}) => {
  const r = classifyRequest(method, url, { headers });
  return r.ok ? decide(getOnly, r.actions, 0).decision : `rejected:${r.code}`;
};

describe("methods are matched exactly", () => {
  it("GET passes a rule naming the GET operation", () => {
    expect(decision("GET", `${GH}/repos/acme/app`)).toBe("allow");
    expect(decision("GET", `${GH}/repos/acme/app/issues`)).toBe("allow");
  });
  for (const path of ["/repos/acme/app", "/repos/acme/app/issues", "/repos/acme/app/pulls/3"]) {
    it(`HEAD ${path} does not pass a rule that names only the GET operation`, () => {
      expect(decision("HEAD", `${GH}${path}`)).toBe("deny");
    });
  }
  it("HEAD through a method override header does not pass either", () => {
    expect(decision("GET", `${GH}/repos/acme/app`, { "x-http-method-override": "HEAD" })).toBe("deny");
  });
  it("HEAD keeps the GET route's resource and is named HEAD <operation>, so rules can allow it", () => {
    const r = classifyRequest("HEAD", `${GH}/repos/acme/app`);
    expect(r.ok && r.actions[0]).toMatchObject({ operation: "HEAD repos.get", effect: "read", resource: "acme/app" });
    const withHead = compilePolicy(normalizePolicy(policySchema.parse({ rules: [{ service: "github", operations: ["repos.get", "HEAD repos.get"], effects: ["read"] }] })));
    expect(r.ok && decide(withHead, r.actions, 0).decision).toBe("allow");
  });
  it("a route that lists HEAD itself is used for HEAD", () => {
    const registry = registryWith([
      { id: "api", hosts: ["api.test"], protocol: "rest", rest: { routes: [{ method: "HEAD", path: "/files/{id}", operation: "files.exists", resource: "{id}" }, { method: "GET", path: "/files/{id}", operation: "files.get", resource: "{id}" }] } },
    ]);
    const r = classify(canonical("HEAD", "https://api.test/files/7"), registry, createInventory());
    expect(r.ok && r.actions[0]?.operation).toBe("files.exists");
  });
  it("OPTIONS and unknown methods never take a GET route's operation", () => {
    for (const method of ["OPTIONS", "PROPFIND", "PURGE", "SEARCH"]) {
      const r = classifyRequest(method, `${GH}/repos/acme/app`);
      expect(r.ok && r.actions[0]?.operation, method).toBe(`${method} /repos/acme/app`);
      expect(decide(getOnly, r.ok ? r.actions : [], 0).decision).toBe("deny");
    }
  });
  it("unknown methods are destructive; OPTIONS is a read under its own name", () => {
    expect(classifyRequest("PURGE", `${GH}/repos/acme/app`)).toMatchObject({ ok: true, effect: "destructive" });
    expect(classifyRequest("OPTIONS", `${GH}/repos/acme/app`)).toMatchObject({ ok: true, effect: "read" });
  });
  it("TRACE and TRACK are refused: they echo the request back, injected credentials included", () => {
    for (const method of ["TRACE", "TRACK", "trace"]) {
      const r = canonicalizeRequest({ method, url: `${GH}/repos/acme/app` });
      expect(r.ok ? "ok" : r.code).toBe("unsupported_method");
    }
  });
  it("an unknown host: HEAD is its own operation as well", () => {
    const r = classifyRequest("HEAD", "https://elsewhere.test/x");
    expect(r.ok && r.actions[0]?.operation).toBe("HEAD /x");
  });
});
