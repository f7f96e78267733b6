/**
 * End to end, one table for every built-in service kind: request in, decision and reason out.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { explainRequest } from "@/lib/policy/explain";
import { exampleDescriptors } from "@/lib/semantics/descriptors/examples";
import { createInventory } from "@/lib/semantics/inventory";
import { registryWith } from "@/lib/semantics/registry";
import { loadSqlParser } from "@/lib/semantics/sql";
import { NOW } from "./support";

beforeAll(async () => {
  await loadSqlParser();
});

const registry = registryWith(exampleDescriptors);
const inventory = createInventory([
  { environment: "production", service: "railway", resources: ["vol_123", "env_prod"] },
  { environment: "staging", service: "railway", resources: ["vol_stg", "env_stg"] },
  { environment: "staging", service: "github", resources: ["acme/sandbox"] },
  { environment: "staging", service: "pg-http", resources: ["app_staging"] },
  { environment: "staging", hosts: ["mcp.example.com", "api.storage.example.com", "*.shop.example.com"] },
]);

const POLICY = `mode: enforce
unlisted: deny
rules:
  - id: railway-staging
    service: railway
    environments: [staging]
    effects: [read, write, destructive, irreversible]
  - id: github-read
    service: github
    effects: [read]
  - id: github-sandbox
    service: github
    resources: [acme/sandbox]
    effects: [write, destructive]
  - id: github-no-force
    service: github
    operations: [git.refs.forceUpdate]
    decision: deny
  - id: storage
    service: storage-api
    environments: [staging]
    effects: [read, write]
  - id: shop
    service: shop-graphql
    effects: [read, write]
  - id: shop-destructive
    service: shop-graphql
    effects: [destructive]
    decision: hold
  - id: db-read
    service: pg-http
    effects: [read]
  - id: db-staging-write
    service: pg-http
    environments: [staging]
    effects: [write]
  - id: mcp-tools
    service: ops-mcp
    effects: [read, write]
  - id: mcp-volume
    service: ops-mcp
    operations: [delete_volume]
    effects: [irreversible]
    waive_approval: true
`;

interface Case {
  name: string;
  method: string;
  url: string;
  body?: unknown;
  decision: "allow" | "deny" | "hold";
  reason: string;
}

const gql = (query: string, variables?: Record<string, unknown>) => ({ query, variables });
const call = (name: string, args: Record<string, unknown>) => ({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name, arguments: args } });

const cases: Case[] = [
  {
    name: "railway: PocketOS, volumeDelete on the production volume",
    method: "POST",
    url: "https://backboard.railway.com/graphql/v2",
    body: gql('mutation { volumeDelete(volumeId: "vol_123") }'),
    decision: "deny",
    reason: "irreversible `volumeDelete` on production volume vol_123: no rule allows irreversible effects on railway/production",
  },
  {
    name: "railway: volumeDelete in staging is held (no waive_approval)",
    method: "POST",
    url: "https://backboard.railway.com/graphql/v2",
    body: gql("mutation D($v: String!) { volumeDelete(volumeId: $v) }", { v: "vol_stg" }),
    decision: "hold",
    reason: "irreversible `volumeDelete` on staging volume vol_stg: irreversible, needs a human approval (rule railway-staging allows it without waive_approval)",
  },
  {
    name: "railway: staging write allowed",
    method: "POST",
    url: "https://backboard.railway.com/graphql/v2",
    body: gql('mutation { variableUpsert(input: { environmentId: "env_stg", projectId: "p", name: "A", value: "1" }) }'),
    decision: "allow",
    reason: "write `variableUpsert` on staging environment env_stg: allowed by rule railway-staging",
  },
  {
    name: "github: delete the repository",
    method: "DELETE",
    url: "https://api.github.com/repos/acme/app",
    decision: "deny",
    reason: "irreversible `repos.delete` on production repository acme/app: no rule allows irreversible effects on github/production",
  },
  {
    name: "github: force push denied by rule even on the sandbox",
    method: "PATCH",
    url: "https://api.github.com/repos/acme/sandbox/git/refs/heads/main",
    body: { sha: "abc", force: true },
    decision: "deny",
    reason: "irreversible `git.refs.forceUpdate` on staging repository acme/sandbox: denied by rule github-no-force",
  },
  {
    name: "github: branch delete on the sandbox",
    method: "DELETE",
    url: "https://api.github.com/repos/acme/sandbox/git/refs/heads/old",
    decision: "allow",
    reason: "destructive `git.refs.delete` on staging repository acme/sandbox: allowed by rule github-sandbox",
  },
  {
    name: "github: read an issue",
    method: "GET",
    url: "https://api.github.com/repos/acme/app/issues/1",
    decision: "allow",
    reason: "read `issues.get` on production repository acme/app: allowed by rule github-read",
  },
  {
    name: "generic REST: DELETE /volumes/{id} overridden to irreversible",
    method: "DELETE",
    url: "https://api.storage.example.com/volumes/v1",
    decision: "deny",
    reason: "irreversible `volumes.delete` on staging volume v1: no rule allows irreversible effects on storage-api/staging",
  },
  {
    name: "generic REST: POST is a write",
    method: "POST",
    url: "https://api.storage.example.com/buckets",
    body: {},
    decision: "allow",
    reason: "write `POST /buckets` on staging /buckets: allowed by rule storage",
  },
  {
    name: "generic GraphQL: delete-like mutation held",
    method: "POST",
    url: "https://api.shop.example.com/graphql",
    body: gql('mutation { deleteProduct(id: "p1") }'),
    decision: "hold",
    reason: "destructive `deleteProduct` on staging product p1: rule shop-destructive requires a human approval",
  },
  {
    name: "sql-http: SELECT then DROP",
    method: "POST",
    url: "https://sql.example.com/sql",
    body: { query: "SELECT 1; DROP TABLE users", database: "app" },
    decision: "deny",
    reason: "irreversible `DROP TABLE` on production table users: no rule allows irreversible effects on pg-http/production",
  },
  {
    name: "sql-http: staging write",
    method: "POST",
    url: "https://sql.example.com/sql",
    body: { query: "UPDATE orders SET seen = true WHERE id = 1", database: "app_staging" },
    decision: "allow",
    reason: "write `UPDATE` on staging table orders: allowed by rule db-staging-write",
  },
  {
    name: "sql-http: unparseable SQL",
    method: "POST",
    url: "https://sql.example.com/sql",
    body: { query: "SELEC * FROM t", database: "app" },
    decision: "deny",
    reason:
      'irreversible `UNPARSEABLE` on production (unparseable SQL: syntax error at or near "SELEC"): no rule allows irreversible effects on pg-http/production',
  },
  {
    name: "mcp: irreversible tool with waived approval",
    method: "POST",
    url: "https://mcp.example.com/mcp",
    body: call("delete_volume", { volume_id: "v9" }),
    decision: "allow",
    reason: "irreversible `delete_volume` on staging v9: allowed by rule mcp-volume (approval waived)",
  },
  {
    name: "mcp: unknown tool is a write",
    method: "POST",
    url: "https://mcp.example.com/mcp",
    body: call("format_disk", {}),
    decision: "allow",
    reason: "write `format_disk` on staging (tool not in the service descriptor): allowed by rule mcp-tools",
  },
  {
    name: "unknown host",
    method: "GET",
    url: "https://example.org/",
    decision: "deny",
    reason: "read `GET /` on production example.org/: no rule allows read effects on unknown/production",
  },
];

describe("decisions for every service kind", () => {
  for (const c of cases) {
    it(c.name, async () => {
      const result = await explainRequest({
        policyYaml: POLICY,
        method: c.method,
        url: c.url,
        headers: c.body !== undefined ? { "content-type": "application/json" } : {},
        ...(c.body !== undefined ? { body: JSON.stringify(c.body) } : {}),
        registry,
        inventory,
        now: NOW,
      });
      if (!result.ok) throw new Error(JSON.stringify(result.errors));
      expect(result.rejected).toBeUndefined();
      expect(result.decision).toBe(c.decision);
      expect(result.reason).toBe(c.reason);
    });
  }
});
