/**
 * Example descriptors for the generic protocols. They are not registered by default (their hosts
 * are placeholders); they document the shape custom services take, in YAML or TypeScript, and
 * the tests use them.
 */
import type { ServiceDescriptorInput } from "@/lib/semantics/descriptors/schema";

/** A REST API with per-path overrides on top of the method defaults. */
export const exampleRest: ServiceDescriptorInput = {
  id: "storage-api",
  hosts: ["api.storage.example.com"],
  protocol: "rest",
  rest: {
    routes: [
      { method: "DELETE", path: "/volumes/{id}", operation: "volumes.delete", effect: "irreversible", resource: "{id}", resourceKind: "volume" },
      { method: "GET", path: "/volumes/{id}", operation: "volumes.get", resource: "{id}", resourceKind: "volume" },
      { method: "POST", path: "/volumes/{id}/snapshots", operation: "volumes.snapshot", effect: "write", resource: "{id}", resourceKind: "volume" },
    ],
  },
};

/** Any GraphQL API: queries read, mutations write, delete-like mutation names destructive. */
export const exampleGraphql: ServiceDescriptorInput = {
  id: "shop-graphql",
  hosts: ["*.shop.example.com"],
  protocol: "graphql",
  graphql: {
    paths: ["/graphql"],
    resourceArgs: ["id", "productId"],
    fields: [{ name: "archiveProduct", effect: "destructive" }],
    persistedQueries: {
      // sha256("query Products { products { id } }")
      "eb675e8eacfec4bff985392c0584144960ae20536b1576d12760301f5af86cdd": "query Products { products { id } }",
    },
  },
};

/** SQL over HTTP: the statement is in the JSON field `query`, the database in `database`. */
export const exampleSqlHttp: ServiceDescriptorInput = {
  id: "pg-http",
  hosts: ["sql.example.com"],
  protocol: "sql-http",
  sql: { paths: ["/sql"], queryField: "query", databaseField: "database" },
};

/** An MCP server over streamable HTTP. */
export const exampleMcp: ServiceDescriptorInput = {
  id: "ops-mcp",
  hosts: ["mcp.example.com"],
  protocol: "mcp",
  mcp: {
    paths: ["/mcp"],
    tools: [
      { name: "list_*", effect: "read" },
      { name: "get_*", effect: "read" },
      { name: "delete_volume", effect: "irreversible", resourceArg: "volume_id" },
      { name: "restart_service", effect: "write", resourceArg: "service" },
    ],
  },
};

export const exampleDescriptors = [exampleRest, exampleGraphql, exampleSqlHttp, exampleMcp];
