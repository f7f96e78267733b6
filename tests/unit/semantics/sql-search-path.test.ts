/**
 * A deny rule on a table outside `public` (`hr.payroll`) must not be dodged by changing the
 * search path first: after `SET search_path = hr` (or `set_config('search_path', 'hr', …)`)
 * earlier in the same request, an unqualified `payroll` may be `hr.payroll`, and is judged so.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { decide } from "@/lib/policy/decide";
import { compilePolicy } from "@/lib/policy/compiled";
import { parsePolicy } from "@/lib/policy/parse";
import { loadSqlParser } from "@/lib/semantics/sql";
import { classifyRequest, json } from "./support";

const parsed = parsePolicy("unlisted: deny\nrules:\n  - service: pg-http\n    resources: [hr.payroll]\n    decision: deny\n  - service: pg-http\n    effects: [read, write]\n");
if (!parsed.ok) throw new Error("policy");
const policy = compilePolicy(parsed.policy);
const verdict = (body: unknown) => {
  const c = classifyRequest("POST", "https://sql.example.com/sql", { body: json(body) });
  if (!c.ok) throw new Error(`${c.code}: ${c.reason}`);
  return decide(policy, c.actions, 0).decision;
};

describe("search_path and deny rules on a schema's tables", () => {
  // Until the parser is loaded every statement is unparseable (irreversible), which this policy
  // denies too: the control below failed whenever the file ran before the parser was ready.
  beforeAll(async () => {
    await loadSqlParser();
  });

  it("an unqualified table after the request set search_path to the schema is that schema's", () => {
    expect(verdict({ query: "SET LOCAL search_path = hr; SELECT * FROM payroll" })).toBe("deny");
    expect(verdict({ query: "SET search_path TO hr, public; SELECT count(*) FROM payroll" })).toBe("deny");
    expect(verdict({ query: "SELECT set_config('search_path', 'hr', true); SELECT * FROM payroll" })).toBe("deny");
    expect(verdict({ query: "SELECT set_config($$search_path$$, $$hr$$, true), (SELECT count(*) FROM payroll)" })).toBe("deny");
  });

  it("the qualified name is denied as before, and an unqualified one without a search_path change is public's (the control)", () => {
    expect(verdict({ query: "SELECT * FROM hr.payroll" })).toBe("deny");
    expect(verdict({ query: "SELECT * FROM payroll" })).toBe("allow");
    expect(verdict({ query: "SET search_path = hr; RESET search_path; SELECT * FROM payroll" })).toBe("allow");
  });
});
