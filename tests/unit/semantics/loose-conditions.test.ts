import { describe, expect, it } from "vitest";
import { graphqlConfigSchema, restConfigSchema } from "@/lib/semantics/descriptors/schema";
import { classifyGraphql } from "@/lib/semantics/graphql";
import { classifyRest } from "@/lib/semantics/rest";
import { canonical, json } from "./support";

/**
 * A condition can lower an effect as well as raise one (a custom service's `dryRun: true` route
 * is a read). A value servers disagree about (`"false"`: true to JavaScript's `if`, false to
 * Rails) must then not win the lower reading: the request is judged under both readings, the
 * stricter wins. Values every server reads one way keep their route.
 */
describe("a condition met only as some servers read the value: both readings, the stricter wins", () => {
  const rest = restConfigSchema.parse({
    routes: [
      { method: "POST", path: "/jobs/{id}/run", operation: "jobs.dryRun", effect: "read", when: { dryRun: true } },
      { method: "POST", path: "/jobs/{id}/run", operation: "jobs.run", effect: "destructive" },
      { method: "POST", path: "/jobs/{id}/preview", operation: "jobs.preview", effect: "read", when: { mode: "preview" } },
    ],
  });
  const run = (body: unknown, headers: Record<string, string> = {}) => {
    const result = classifyRest(canonical("POST", "https://jobs.example.com/jobs/7/run", { body: typeof body === "string" ? body : json(body), headers }), rest);
    return result.ok ? result.drafts.map((d) => [d.operation, d.effect]) : result.code;
  };

  it("dryRun: true (a JSON boolean) is the dry run; no dryRun, or false, the real run (the control)", () => {
    expect(run({ dryRun: true })).toEqual([["jobs.dryRun", "read"]]);
    expect(run({})).toEqual([["jobs.run", "destructive"]]);
    expect(run({ dryRun: false })).toEqual([["jobs.run", "destructive"]]);
  });

  for (const dryRun of ["false", "no", "0.0", "true", "yes", 1, [], { a: 1 }]) {
    it(`dryRun: ${JSON.stringify(dryRun)} is judged as the real run`, () => {
      expect(run({ dryRun })).toEqual([["jobs.run", "destructive"]]);
    });
  }

  it("a JSON body labelled a form whose form reading sets dryRun is judged as the real run", () => {
    expect(run(JSON.stringify({ x: "&dryRun=true&" }), { "content-type": "application/x-www-form-urlencoded" })).toEqual([["jobs.run", "destructive"]]);
  });

  it("a loosely met condition with no route after it: the method's default is the other reading", () => {
    const result = classifyRest(canonical("POST", "https://jobs.example.com/jobs/7/preview", { body: json({ mode: "PREVIEW" }) }), rest);
    expect(result.ok && result.drafts.map((d) => [d.operation, d.effect])).toEqual([["POST /jobs/7/preview", "write"]]);
    const exact = classifyRest(canonical("POST", "https://jobs.example.com/jobs/7/preview", { body: json({ mode: "preview" }) }), rest);
    expect(exact.ok && exact.drafts.map((d) => [d.operation, d.effect])).toEqual([["jobs.preview", "read"]]);
  });

  it("two readings of the same effect are both judged (a policy may allow one operation and not the other)", () => {
    const tie = restConfigSchema.parse({
      routes: [
        { method: "POST", path: "/jobs/{id}/run", operation: "jobs.rehearse", effect: "write", when: { rehearse: true } },
        { method: "POST", path: "/jobs/{id}/run", operation: "jobs.run", effect: "write" },
      ],
    });
    const judged = (rehearse: unknown) => {
      const result = classifyRest(canonical("POST", "https://jobs.example.com/jobs/7/run", { body: json({ rehearse }) }), tie);
      return result.ok ? result.drafts.map((d) => d.operation) : result.code;
    };
    expect(judged("false")).toEqual(["jobs.rehearse", "jobs.run"]);
    expect(judged(true)).toEqual(["jobs.rehearse"]);
    expect(judged(false)).toEqual(["jobs.run"]);
  });

  const graphql = graphqlConfigSchema.parse({
    fields: [
      { name: "deployRun", effect: "read", when: { dryRun: true } },
      { name: "deployRun", effect: "irreversible" },
    ],
  });
  const mutation = (args: string) => {
    const result = classifyGraphql(canonical("POST", "https://api.example.com/graphql", { body: json({ query: `mutation { deployRun(id: "d1", ${args}) { id } }` }) }), graphql);
    return result.ok ? result.drafts.map((d) => d.effect) : result.code;
  };

  it("GraphQL: dryRun: true is a read; dryRun: \"false\" (a string some scalar reads as true) is judged as the real deploy", () => {
    expect(mutation("dryRun: true")).toEqual(["write"]);
    expect(mutation('dryRun: "false"')).toEqual(["irreversible"]);
    expect(mutation("dryRun: false")).toEqual(["irreversible"]);
  });
});
