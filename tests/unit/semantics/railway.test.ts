import { describe, expect, it } from "vitest";
import type { Effect } from "@/lib/semantics/types";
import { classifyRequest, json, RAILWAY } from "./support";

interface Case {
  name: string;
  query: string;
  variables?: Record<string, unknown>;
  operationName?: string;
  expect: Array<{ operation: string; effect: Effect; resource: string; environment: string }>;
}

const cases: Case[] = [
  {
    name: "volumeDelete on the production volume is irreversible",
    query: 'mutation { volumeDelete(volumeId: "vol_123") }',
    expect: [{ operation: "volumeDelete", effect: "irreversible", resource: "vol_123", environment: "production" }],
  },
  {
    name: "volumeDelete with the ID in a variable",
    query: "mutation VolumeDelete($id: String!) { volumeDelete(volumeId: $id) }",
    variables: { id: "vol_stg" },
    expect: [{ operation: "volumeDelete", effect: "irreversible", resource: "vol_stg", environment: "staging" }],
  },
  {
    name: "variable default applies when the variable is not sent",
    query: 'mutation D($id: String = "vol_123") { volumeDelete(volumeId: $id) }',
    expect: [{ operation: "volumeDelete", effect: "irreversible", resource: "vol_123", environment: "production" }],
  },
  {
    name: "environmentDelete resource is the environment id",
    query: 'mutation { environmentDelete(id: "env_stg") }',
    expect: [{ operation: "environmentDelete", effect: "irreversible", resource: "env_stg", environment: "staging" }],
  },
  {
    name: "serviceDelete names the service, environment from environmentId",
    query: 'mutation { serviceDelete(id: "svc_x", environmentId: "env_prod") }',
    expect: [{ operation: "serviceDelete", effect: "irreversible", resource: "svc_x", environment: "production" }],
  },
  {
    name: "IDs pointing at staging and production resolve to production",
    query: 'mutation { serviceDelete(id: "svc_stg", environmentId: "env_prod") }',
    expect: [{ operation: "serviceDelete", effect: "irreversible", resource: "svc_stg", environment: "production" }],
  },
  {
    name: "projectDelete, deploymentRemove, volumeInstanceBackupDelete are irreversible",
    query:
      'mutation { projectDelete(id: "p1") deploymentRemove(id: "d1") volumeInstanceBackupDelete(volumeInstanceId: "vi1", volumeInstanceBackupId: "b1") { workflowId } }',
    expect: [
      { operation: "projectDelete", effect: "irreversible", resource: "p1", environment: "production" },
      { operation: "deploymentRemove", effect: "irreversible", resource: "d1", environment: "production" },
      { operation: "volumeInstanceBackupDelete", effect: "irreversible", resource: "b1", environment: "production" },
    ],
  },
  {
    name: "variableUpsert is a write; IDs nested in the input object resolve the environment",
    query: "mutation U($input: VariableUpsertInput!) { variableUpsert(input: $input) }",
    variables: { input: { projectId: "p1", environmentId: "env_stg", serviceId: "svc_stg", name: "A", value: "1" } },
    expect: [{ operation: "variableUpsert", effect: "write", resource: "svc_stg", environment: "staging" }],
  },
  {
    name: "variableCollectionUpsert with replace: true is destructive",
    query: 'mutation { variableCollectionUpsert(input: { projectId: "p", environmentId: "env_stg", serviceId: "svc_stg", variables: {}, replace: true }) }',
    expect: [{ operation: "variableCollectionUpsert", effect: "destructive", resource: "svc_stg", environment: "staging" }],
  },
  {
    name: "variableCollectionUpsert without replace is a write",
    query: 'mutation { variableCollectionUpsert(input: { projectId: "p", environmentId: "env_stg", serviceId: "svc_stg", variables: {} }) }',
    expect: [{ operation: "variableCollectionUpsert", effect: "write", resource: "svc_stg", environment: "staging" }],
  },
  // An environment config patch deletes what it marks `isDeleted` (the dashboard's delete), named
  // only as a key: judged irreversible whatever it holds, as is committing staged changes.
  {
    name: "environmentPatchCommit deleting a volume by a key of the patch is irreversible",
    query: "mutation P($environmentId: String!, $patch: EnvironmentConfig) { environmentPatchCommit(environmentId: $environmentId, patch: $patch) }",
    variables: { environmentId: "env_prod", patch: { volumes: { vol_123: { isDeleted: true } }, services: { svc_prod: { isDeleted: true } } } },
    expect: [{ operation: "environmentPatchCommit", effect: "irreversible", resource: "env_prod", environment: "production" }],
  },
  {
    name: "environmentPatchCommit on staging is irreversible too (a rule may waive the approval)",
    query: 'mutation { environmentPatchCommit(environmentId: "env_stg", patch: { services: { svc_stg: { deploy: { numReplicas: 2 } } } }) }',
    expect: [{ operation: "environmentPatchCommit", effect: "irreversible", resource: "env_stg", environment: "staging" }],
  },
  {
    name: "environmentPatchCommitStaged applies a patch this request does not show: irreversible",
    query: 'mutation { environmentPatchCommitStaged(environmentId: "env_prod", commitMessage: "tidy up") }',
    expect: [{ operation: "environmentPatchCommitStaged", effect: "irreversible", resource: "env_prod", environment: "production" }],
  },
  {
    name: "environmentStageChanges only stages: a write (the commit is judged)",
    query: 'mutation { environmentStageChanges(environmentId: "env_stg", input: { volumes: { vol_stg: { isDeleted: true } } }) { id } }',
    expect: [{ operation: "environmentStageChanges", effect: "write", resource: "env_stg", environment: "staging" }],
  },
  {
    name: "unlisted delete-like mutation is destructive by name",
    query: 'mutation { customDomainDelete(id: "cd1") tcpProxyDelete(id: "tp1") }',
    expect: [
      { operation: "customDomainDelete", effect: "destructive", resource: "cd1", environment: "production" },
      { operation: "tcpProxyDelete", effect: "destructive", resource: "tp1", environment: "production" },
    ],
  },
  {
    name: "queries are reads",
    query: 'query { project(id: "p1") { name } me { email } }',
    expect: [
      { operation: "project", effect: "read", resource: "p1", environment: "production" },
      { operation: "me", effect: "read", resource: "-", environment: "production" },
    ],
  },
  {
    name: "alias does not hide the field: safe: volumeDelete(...)",
    query: 'mutation { safe: volumeDelete(volumeId: "vol_123") }',
    expect: [{ operation: "volumeDelete", effect: "irreversible", resource: "vol_123", environment: "production" }],
  },
];

describe("Railway GraphQL classification", () => {
  for (const c of cases) {
    it(c.name, () => {
      const body = json({ query: c.query, variables: c.variables, operationName: c.operationName });
      const result = classifyRequest("POST", RAILWAY, { body });
      if (!result.ok) throw new Error(`${result.code}: ${result.reason}`);
      expect(result.service).toBe("railway");
      expect(result.actions.map(({ operation, effect, resource, environment }) => ({ operation, effect, resource, environment }))).toEqual(c.expect);
    });
  }

  it("the alias is kept in the detail for the audit trail", () => {
    const result = classifyRequest("POST", RAILWAY, { body: json({ query: 'mutation { safe: volumeDelete(volumeId: "vol_123") }' }) });
    expect(result.ok && result.actions[0]?.detail?.["alias"]).toBe("safe");
  });

  it("backboard.railway.app is the same service", () => {
    const result = classifyRequest("POST", "https://backboard.railway.app/graphql/v2", { body: json({ query: "{ me { id } }" }) });
    expect(result.ok && result.service).toBe("railway");
  });

  it("other paths on backboard are not GraphQL endpoints: rejected", () => {
    const result = classifyRequest("POST", "https://backboard.railway.com/graphql/v3", { body: json({ query: "{ me { id } }" }) });
    expect(result.ok ? null : result.code).toBe("unknown_endpoint");
  });

  it("spellings of the endpoint (trailing slash, case, ;parameters) are refused as variants", () => {
    for (const path of ["/graphql/v2/", "/GraphQL/v2", "/graphql/V2", "/graphql;x=1/v2", "/graphql/v2;v=1"]) {
      const result = classifyRequest("POST", `https://backboard.railway.com${path}`, { body: json({ query: "{ me { id } }" }) });
      expect(result.ok ? null : result.code, path).toBe("endpoint_path_variant");
    }
  });

  it("a port Railway does not listen on is not 'unknown': rejected", () => {
    const result = classifyRequest("POST", "https://backboard.railway.com:8443/graphql/v2", { body: json({ query: "{ me { id } }" }) });
    expect(result.ok ? null : result.code).toBe("service_endpoint_mismatch");
  });

  it("plain http to Railway is rejected", () => {
    const result = classifyRequest("POST", "http://backboard.railway.com/graphql/v2", { body: json({ query: "{ me { id } }" }) });
    expect(result.ok ? null : result.code).toBe("service_endpoint_mismatch");
  });
});
