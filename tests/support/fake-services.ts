import { buildSchema, graphql } from "graphql";
import type { ServerResponse } from "node:http";
import { startHttpUpstream, type Hit, type Upstream } from "./upstreams";

/**
 * A small GraphQL server with the shape of Railway's API: queries and the destructive mutations
 * an agent could reach for. It executes what it receives and records every root field it ran,
 * so a test can assert that a denied mutation was never executed.
 */
const railwaySchema = buildSchema(`
  type Environment { id: ID! name: String! }
  type Volume { id: ID! name: String! }
  type Query { environment(id: ID!): Environment  volume(id: ID!): Volume  me: String }
  type Mutation {
    volumeDelete(volumeId: ID!): Boolean
    volumeInstanceBackupDelete(volumeInstanceBackupId: ID!): Boolean
    environmentDelete(id: ID!): Boolean
    serviceDelete(id: ID!): Boolean
    projectDelete(id: ID!): Boolean
    variableUpsert(input: String): Boolean
  }
`);

export interface RailwayImitation extends Upstream {
  /** Root fields executed, e.g. "volumeDelete(vol_prod)". */
  executed: string[];
}

/** The Railway imitation's request handler; every executed root field is pushed to `executed`. */
export function railwayResponder(executed: string[]): (hit: Hit, res: ServerResponse) => void {
  const record = (name: string) => (args: Record<string, unknown>) => {
    executed.push(`${name}(${Object.values(args).join(",")})`);
    return name.endsWith("Delete") || name === "variableUpsert" ? true : { id: String(Object.values(args)[0] ?? "x"), name };
  };
  const root = Object.fromEntries(
    ["environment", "volume", "volumeDelete", "volumeInstanceBackupDelete", "environmentDelete", "serviceDelete", "projectDelete", "variableUpsert"].map((n) => [n, record(n)]),
  );
  return (hit, res) => {
    const body = JSON.parse(hit.body || "{}") as { query?: string; variables?: Record<string, unknown>; operationName?: string };
    void graphql({ schema: railwaySchema, source: body.query ?? "", rootValue: { ...root, me: () => "agent" }, variableValues: body.variables, operationName: body.operationName }).then((result) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(result));
    });
  };
}

export async function startRailwayImitation(): Promise<RailwayImitation> {
  const executed: string[] = [];
  const upstream = await startHttpUpstream(railwayResponder(executed));
  return Object.assign(upstream, { executed });
}

/** A SQL-over-HTTP endpoint (`{"query": "..."}`) that records the statements it was sent. */
export async function startSqlEndpoint(): Promise<Upstream & { statements: string[] }> {
  const statements: string[] = [];
  const upstream = await startHttpUpstream((hit, res) => {
    statements.push(String((JSON.parse(hit.body || "{}") as { query?: string }).query));
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ rows: [] }));
  });
  return Object.assign(upstream, { statements });
}
