import { describe, expect, it } from "vitest";
import { restConfigSchema } from "@/lib/semantics/descriptors/schema";
import { classifyRest } from "@/lib/semantics/rest";
import { canonical, classifyRequest, json } from "./support";

const GH = "https://api.github.com";

/**
 * Rails' wrap_parameters copies a JSON body's keys into params[<resource>], and controllers read
 * params[:repository][:private]; so {"repository": {"private": false}} says private: false to
 * them while the top level of the body says nothing. A condition on a body key is read under
 * every object-valued top-level key that holds it too; readings that disagree are both judged.
 */
describe("a body condition read under a wrapper key (Rails wrap_parameters)", () => {
  const github = (path: string, body: unknown, contentType?: string) => {
    const result = classifyRequest("PATCH", `${GH}${path}`, { body: typeof body === "string" ? body : json(body), contentType });
    return result.ok ? result.actions.map((a) => [a.operation, a.effect]) : result.code;
  };

  for (const wrapper of ["repository", "repo", "data", "Repository"]) {
    it(`{"${wrapper}": {"private": false}} makes the repository public (irreversible)`, () => {
      expect(github("/repos/acme/app", { [wrapper]: { private: false } })).toEqual([["repos.update", "irreversible"]]);
    });
  }

  it('{"repository": {"visibility": "public"}} is irreversible', () => {
    expect(github("/repos/acme/app", { repository: { visibility: "public" } })).toEqual([["repos.update", "irreversible"]]);
  });

  it("a top-level private: true does not hide a wrapped private: false", () => {
    expect(github("/repos/acme/app", { private: true, repository: { private: false } })).toEqual([["repos.update", "irreversible"]]);
  });

  it("a wrapped force: true is the forced update", () => {
    expect(github("/repos/acme/app/git/refs/heads/main", { ref: { sha: "abc", force: true } })).toEqual([["git.refs.forceUpdate", "irreversible"]]);
  });

  it("the wrapped form reading of a body labelled a form counts too", () => {
    expect(github("/repos/acme/app", '{"description":"x","y":"&repository[private]=0&"}', "application/x-www-form-urlencoded")).toEqual([["repos.update", "irreversible"]]);
  });

  it("the condition's key nested in a URL parameter is refused", () => {
    expect(github("/repos/acme/app?repository[private]=false", { description: "x" })).toBe("ambiguous_parameter");
    expect(github("/repos/acme/app?repository.private=false", { description: "x" })).toBe("ambiguous_parameter");
  });

  it("objects that do not hold the condition's key change nothing (the control)", () => {
    expect(github("/repos/acme/app", { description: "x", security_and_analysis: { advanced_security: { status: "enabled" } } })).toEqual([["repos.update", "write"]]);
    expect(github("/repos/acme/app", { repository: { private: true } })).toEqual([["repos.update", "write"]]);
  });

  const rest = restConfigSchema.parse({
    routes: [
      { method: "POST", path: "/jobs/{id}/run", operation: "jobs.dryRun", effect: "read", when: { dryRun: true } },
      { method: "POST", path: "/jobs/{id}/run", operation: "jobs.run", effect: "destructive" },
    ],
  });
  const run = (body: unknown) => {
    const result = classifyRest(canonical("POST", "https://jobs.example.com/jobs/7/run", { body: json(body) }), rest);
    return result.ok ? result.drafts.map((d) => [d.operation, d.effect]) : result.code;
  };

  it("a de-escalating condition met only under a wrapper is the real run", () => {
    expect(run({ job: { dryRun: true } })).toEqual([["jobs.run", "destructive"]]);
  });

  it("a de-escalating condition met at the top level but contradicted under a wrapper is the real run", () => {
    expect(run({ dryRun: true, job: { dryRun: false } })).toEqual([["jobs.run", "destructive"]]);
  });

  it("met at the top level and under the wrapper, or with a wrapper that does not mention it, it is the dry run (the control)", () => {
    expect(run({ dryRun: true, job: { dryRun: true } })).toEqual([["jobs.dryRun", "read"]]);
    expect(run({ dryRun: true, options: { verbose: true } })).toEqual([["jobs.dryRun", "read"]]);
  });
});
