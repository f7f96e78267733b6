import { describe, expect, it } from "vitest";
import { decide, type Verdict } from "@/lib/policy/decide";
import type { SemanticAction } from "@/lib/semantics/types";
import { action, NOW, snapshot } from "./support";

const POLICY = `
mode: enforce
unlisted: deny
rules:
  - id: railway-staging-read
    service: railway
    environments: [staging]
    effects: [read]
  - id: railway-staging-write
    service: railway
    environments: [staging]
    operations: ["variable*", "serviceInstance*"]
    effects: [write]
  - id: railway-staging-volume-delete
    service: railway
    environments: [staging]
    operations: [volumeDelete]
    effects: [irreversible]
  - id: railway-staging-env-delete
    service: railway
    environments: [staging]
    operations: [environmentDelete]
    effects: [irreversible]
    waive_approval: true
  - id: github-read
    service: github
    resources: ["acme/*"]
    effects: [read]
  - id: github-no-secret-repo
    service: github
    resources: ["acme/secrets"]
    decision: deny
  - id: github-branch-delete
    service: github
    resources: ["acme/app"]
    operations: [git.refs.delete]
    effects: [destructive]
    decision: hold
  - id: temporary-write
    service: github
    resources: ["acme/app"]
    operations: ["issues.create"]
    effects: [write]
    expires_at: "2026-02-01T00:00:00Z"
`;

interface Case {
  name: string;
  actions: SemanticAction[];
  decision: Verdict;
  ruleId: string | null;
  reason: string;
}

const volume = { resourceKind: "volume" };
const repo = { resourceKind: "repository" };

const cases: Case[] = [
  {
    name: "PocketOS incident: read on railway staging, volumeDelete on the production volume",
    actions: [action("railway", "production", "volumeDelete", "irreversible", "vol_123", volume)],
    decision: "deny",
    ruleId: null,
    reason: "irreversible `volumeDelete` on production volume vol_123: no rule allows irreversible effects on railway/production",
  },
  {
    name: "read in staging is allowed",
    actions: [action("railway", "staging", "project", "read", "p1")],
    decision: "allow",
    ruleId: "railway-staging-read",
    reason: "read `project` on staging p1: allowed by rule railway-staging-read",
  },
  {
    name: "read in production is not listed",
    actions: [action("railway", "production", "project", "read", "p1")],
    decision: "deny",
    ruleId: null,
    reason: "read `project` on production p1: no rule allows read effects on railway/production",
  },
  {
    name: "write matching an operation glob",
    actions: [action("railway", "staging", "variableUpsert", "write", "svc_1")],
    decision: "allow",
    ruleId: "railway-staging-write",
    reason: "write `variableUpsert` on staging svc_1: allowed by rule railway-staging-write",
  },
  {
    name: "write outside the listed operations names the nearby rules",
    actions: [action("railway", "staging", "serviceCreate", "write", "p1")],
    decision: "deny",
    ruleId: null,
    reason:
      "write `serviceCreate` on staging p1: no rule covers this operation and resource (railway-staging-write allow write effects on railway/staging for other operations or resources)",
  },
  {
    name: "irreversible allowed without waive_approval is held",
    actions: [action("railway", "staging", "volumeDelete", "irreversible", "vol_stg", volume)],
    decision: "hold",
    ruleId: "railway-staging-volume-delete",
    reason:
      "irreversible `volumeDelete` on staging volume vol_stg: irreversible, needs a human approval (rule railway-staging-volume-delete allows it without waive_approval)",
  },
  {
    name: "irreversible with waive_approval passes",
    actions: [action("railway", "staging", "environmentDelete", "irreversible", "env_stg")],
    decision: "allow",
    ruleId: "railway-staging-env-delete",
    reason: "irreversible `environmentDelete` on staging env_stg: allowed by rule railway-staging-env-delete (approval waived)",
  },
  {
    name: "explicit deny wins over an allow",
    actions: [action("github", "production", "repos.get", "read", "acme/secrets", repo)],
    decision: "deny",
    ruleId: "github-no-secret-repo",
    reason: "read `repos.get` on production repository acme/secrets: denied by rule github-no-secret-repo",
  },
  {
    name: "patterns are case-insensitive, so a deny cannot be dodged by case",
    actions: [action("github", "production", "repos.get", "read", "ACME/Secrets", repo)],
    decision: "deny",
    ruleId: "github-no-secret-repo",
    reason: "read `repos.get` on production repository ACME/Secrets: denied by rule github-no-secret-repo",
  },
  {
    name: "covered only by a hold rule",
    actions: [action("github", "production", "git.refs.delete", "destructive", "acme/app", repo)],
    decision: "hold",
    ruleId: "github-branch-delete",
    reason: "destructive `git.refs.delete` on production repository acme/app: rule github-branch-delete requires a human approval",
  },
  {
    name: "expired rules match nothing",
    actions: [action("github", "production", "issues.create", "write", "acme/app", repo)],
    decision: "deny",
    ruleId: null,
    reason: "write `issues.create` on production repository acme/app: no rule allows write effects on github/production",
  },
  {
    name: "unknown service is unlisted",
    actions: [action("unknown", "production", "GET /x", "read", "example.org/x")],
    decision: "deny",
    ruleId: null,
    reason: "read `GET /x` on production example.org/x: no rule allows read effects on unknown/production",
  },
  {
    name: "most restrictive action decides: read + delete in one request",
    actions: [
      action("railway", "staging", "project", "read", "p1"),
      action("railway", "production", "volumeDelete", "irreversible", "vol_123", volume),
    ],
    decision: "deny",
    ruleId: null,
    reason: "irreversible `volumeDelete` on production volume vol_123: no rule allows irreversible effects on railway/production",
  },
  {
    name: "deny beats hold across actions",
    actions: [
      action("railway", "staging", "volumeDelete", "irreversible", "vol_stg", volume),
      action("github", "production", "repos.get", "read", "acme/secrets", repo),
    ],
    decision: "deny",
    ruleId: "github-no-secret-repo",
    reason: "read `repos.get` on production repository acme/secrets: denied by rule github-no-secret-repo",
  },
  {
    name: "several denied actions are counted in the reason",
    actions: [action("railway", "production", "a", "write"), action("railway", "production", "b", "write")],
    decision: "deny",
    ruleId: null,
    reason: "write `a` on production: no rule allows write effects on railway/production (and 1 more action)",
  },
  {
    name: "unparseable SQL carries its note into the reason",
    actions: [action("pg-http", "production", "UNPARSEABLE", "irreversible", "-", { note: "unparseable SQL: syntax error" })],
    decision: "deny",
    ruleId: null,
    reason: "irreversible `UNPARSEABLE` on production (unparseable SQL: syntax error): no rule allows irreversible effects on pg-http/production",
  },
  {
    name: "no actions at all is denied",
    actions: [],
    decision: "deny",
    ruleId: null,
    reason: "request carries no actions",
  },
];

describe("decide (enforce mode)", () => {
  const compiled = snapshot(POLICY);
  for (const c of cases) {
    it(c.name, () => {
      const result = decide(compiled, c.actions, NOW);
      expect(result.decision).toBe(c.decision);
      expect(result.ruleId).toBe(c.ruleId);
      expect(result.reason).toBe(c.reason);
      expect(result.mode).toBe("enforce");
      expect(result.wouldBe).toBeUndefined();
    });
  }
  it("returns one decision per action and the max effect", () => {
    const result = decide(compiled, cases[12]?.actions ?? [], NOW);
    expect(result.actions.map((a) => a.decision)).toEqual(["allow", "deny"]);
    expect(result.effect).toBe("irreversible");
  });
  it("accepts a Date for now", () => {
    expect(decide(compiled, cases[1]?.actions ?? [], new Date(NOW)).decision).toBe("allow");
  });
  it("a rule before its expiry applies", () => {
    const before = Date.parse("2026-01-15T00:00:00Z");
    expect(decide(compiled, cases[10]?.actions ?? [], before).ruleId).toBe("temporary-write");
  });
});

describe("decide: unlisted, report mode, wildcards", () => {
  it("unlisted: hold asks a human", () => {
    const s = snapshot("unlisted: hold\nrules: []");
    const result = decide(s, [action("railway", "production", "volumeDelete", "irreversible", "vol_123", volume)], NOW);
    expect(result.decision).toBe("hold");
    expect(result.reason).toBe(
      "irreversible `volumeDelete` on production volume vol_123: no rule allows irreversible effects on railway/production; held for approval (unlisted: hold)",
    );
  });
  it("report mode allows but says what it would have done", () => {
    const s = snapshot("mode: report\nrules:\n  - service: railway\n    effects: [read]");
    const result = decide(s, [action("railway", "production", "volumeDelete", "irreversible", "vol_123", volume)], NOW);
    expect(result.decision).toBe("allow");
    expect(result.wouldBe).toBe("deny");
    expect(result.mode).toBe("report");
    expect(result.reason).toBe(
      "report mode, would deny: irreversible `volumeDelete` on production volume vol_123: no rule allows irreversible effects on railway/production",
    );
  });
  it("report mode on an allowed request", () => {
    const s = snapshot("mode: report\nrules:\n  - service: railway\n    effects: [read]");
    const result = decide(s, [action("railway", "production", "me", "read")], NOW);
    expect(result.wouldBe).toBe("allow");
    expect(result.reason).toBe("read `me` on production: allowed by rule rule-1");
  });
  it("service '*' rules apply to named and unnamed services", () => {
    const s = snapshot(`rules:
  - { id: all-read, service: "*", effects: [read] }
  - { id: gh-write, service: github, effects: [write] }`);
    expect(decide(s, [action("github", "production", "x", "read")], NOW).ruleId).toBe("all-read");
    expect(decide(s, [action("other", "production", "x", "read")], NOW).ruleId).toBe("all-read");
    expect(decide(s, [action("other", "production", "x", "write")], NOW).decision).toBe("deny");
  });
  it("the first matching rule (by position) is reported", () => {
    const s = snapshot(`rules:
  - { id: glob, service: railway, operations: ["volume*"], effects: [write] }
  - { id: exact, service: railway, operations: [volumeUpdate], effects: [write] }`);
    expect(decide(s, [action("railway", "production", "volumeUpdate", "write")], NOW).ruleId).toBe("glob");
  });
  it("exact operation names match case-insensitively", () => {
    const s = snapshot("rules:\n  - { id: del, service: pg-http, operations: [delete], effects: [write] }");
    expect(decide(s, [action("pg-http", "production", "DELETE", "write", "t")], NOW).ruleId).toBe("del");
  });
  it("a deny rule without effects covers every effect", () => {
    const s = snapshot(`rules:
  - { id: all, service: railway, effects: [read, write, destructive, irreversible], waive_approval: true }
  - { id: never, service: railway, environments: [production], decision: deny }`);
    for (const effect of ["read", "write", "destructive", "irreversible"] as const) {
      expect(decide(s, [action("railway", "production", "x", effect)], NOW).ruleId).toBe("never");
    }
    expect(decide(s, [action("railway", "staging", "x", "irreversible")], NOW).decision).toBe("allow");
  });
  it("an allow rule beats a hold rule for the same action", () => {
    const s = snapshot(`rules:
  - { id: h, service: railway, effects: [write], decision: hold }
  - { id: a, service: railway, effects: [write] }`);
    expect(decide(s, [action("railway", "production", "x", "write")], NOW).decision).toBe("allow");
  });
  it("a waiving rule further down still waives", () => {
    const s = snapshot(`rules:
  - { id: plain, service: railway, effects: [irreversible] }
  - { id: waiver, service: railway, operations: [volumeDelete], effects: [irreversible], waive_approval: true }`);
    const result = decide(s, [action("railway", "staging", "volumeDelete", "irreversible")], NOW);
    expect([result.decision, result.ruleId]).toEqual(["allow", "waiver"]);
  });
});

describe("decide: a deny rule also stops its resource with a format suffix", () => {
  // A server that strips `.json` from a parameter (Rails) deletes `prod-db` for `prod-db.json`.
  const s = snapshot(`rules:
  - { id: no-prod, service: storage, resources: [prod-db], decision: deny }
  - { id: no-secrets, service: github, resources: ["acme/secrets"], decision: deny }
  - { id: all, service: "*", effects: [read, write, destructive, irreversible], waive_approval: true }`);
  const verdict = (service: string, resource: string) => decide(s, [action(service, "production", "volumes.delete", "irreversible", resource)], NOW);

  for (const resource of ["prod-db.json", "prod-db.XML", "prod-db.v2"]) {
    it(`${resource} is denied by the rule naming prod-db`, () => {
      const result = verdict("storage", resource);
      expect([result.decision, result.ruleId]).toEqual(["deny", "no-prod"]);
    });
  }
  it("acme/secrets.json is denied by the rule naming acme/secrets", () => {
    expect(verdict("github", "acme/secrets.json").ruleId).toBe("no-secrets");
  });
  it("other names are not: a longer name, a dotted name with another stem, a suffix alone", () => {
    for (const resource of ["prod-db2.json", "prod-dbx", "prod.db", "staging-db.json", ".json", "prod-db.toolongsuffix"]) {
      expect(verdict("storage", resource).decision, resource).toBe("allow");
    }
  });
  it("allow rules never read the suffixless resource", () => {
    const only = snapshot("rules:\n  - { id: one, service: storage, resources: [v1], effects: [destructive] }");
    expect(decide(only, [action("storage", "production", "volumes.delete", "destructive", "v1.json")], NOW).decision).toBe("deny");
    expect(decide(only, [action("storage", "production", "volumes.delete", "destructive", "v1")], NOW).decision).toBe("allow");
  });
});

describe("decide: a deny rule naming an SQL table also stops its other spellings", () => {
  // PostgreSQL finds `secrets` through the search path (public by default): one table, three spellings.
  const s = snapshot(`rules:
  - { id: no-secrets, service: app-db, resources: [secrets], decision: deny }
  - { id: no-payroll, service: app-db, resources: [hr.payroll], decision: deny }
  - { id: all, service: "*", effects: [read, write, destructive, irreversible], waive_approval: true }`);
  const table = (resource: string, kind = "table") => decide(s, [action("app-db", "production", "SELECT", "read", resource, { resourceKind: kind })], NOW);

  for (const resource of ["secrets", "public.secrets", "app.public.secrets", "PUBLIC.Secrets"]) {
    it(`${resource} is denied by the rule naming secrets`, () => {
      expect([table(resource).decision, table(resource).ruleId]).toEqual(["deny", "no-secrets"]);
    });
  }
  it("a rule naming a qualified table stops the catalog-qualified spelling, and the unqualified one only through public", () => {
    expect(table("app.hr.payroll").ruleId).toBe("no-payroll");
    expect(table("hr.payroll").ruleId).toBe("no-payroll");
    expect(table("payroll").decision).toBe("allow");
  });
  it("other tables and other kinds of resource are not", () => {
    expect(table("public.secrets_archive").decision).toBe("allow");
    expect(table("public.secrets", "repository").decision).toBe("allow");
  });
  it("allow rules never read the other spellings", () => {
    const only = snapshot("rules:\n  - { id: one, service: app-db, resources: [orders], effects: [read] }");
    expect(decide(only, [action("app-db", "production", "SELECT", "read", "public.orders", { resourceKind: "table" })], NOW).decision).toBe("deny");
  });
});
