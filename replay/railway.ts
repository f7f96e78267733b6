/**
 * A Railway-like GraphQL API that really deletes: the upstream the incident replay attacks.
 * It holds three volumes (production, its backup, staging) and knows two tokens: an account token
 * that may delete anything (the token the incident's agent found) and a staging project token
 * that may touch staging only (what Bulkhead's vault holds when identity is on). A request
 * without a valid token is refused before anything runs. Every request is recorded with what it
 * carried, so a replay can say what reached the upstream and on whose authority.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { buildSchema, graphql } from "graphql";

export const RAILWAY_HOST = "backboard.railway.com";
export const RAILWAY_PATH = "/graphql/v2";
export const VOLUMES = { production: "vol_prod", backup: "vol_prod_backup", staging: "vol_stg" } as const;
const ENVIRONMENT_OF: Record<string, "production" | "staging"> = { vol_prod: "production", vol_prod_backup: "production", vol_stg: "staging" };

export interface RailwayTokens {
  /** The all-powerful account token (deletes anything). */
  account: string;
  /** A staging project token (cannot touch production). */
  staging: string;
}

export interface RailwayRequest {
  at: string;
  /** Which token authorised it: `account`, `staging`, `invalid` or `none`. */
  authority: "account" | "staging" | "invalid" | "none";
  /** The root fields asked for, e.g. `volumeDelete(vol_prod)`. */
  fields: string[];
  status: number;
  /** What the upstream did: `deleted vol_prod`, `refused: ...`. */
  outcome: string;
}

export interface RailwayState {
  volumes: string[];
  requests: RailwayRequest[];
}

const schema = buildSchema(`
  type Volume { id: ID! name: String! environment: String! }
  type Query { me: String  volume(id: ID!): Volume  volumes: [Volume!]! }
  type Mutation { volumeDelete(volumeId: ID!): Boolean }
`);

export class RailwayUpstream {
  private volumes = new Set<string>();
  private requests: RailwayRequest[] = [];

  constructor(private readonly tokens: RailwayTokens) {
    this.reset();
  }

  /** Fresh state: all three volumes exist, nothing recorded. */
  reset(): void {
    this.volumes = new Set(Object.values(VOLUMES));
    this.requests = [];
  }

  state(): RailwayState {
    return { volumes: [...this.volumes].sort(), requests: [...this.requests] };
  }

  private authority(header: string | undefined): RailwayRequest["authority"] {
    const m = /^Bearer (\S+)$/.exec(header ?? "");
    if (!header) return "none";
    if (m?.[1] === this.tokens.account) return "account";
    if (m?.[1] === this.tokens.staging) return "staging";
    return "invalid";
  }

  /** The HTTP request handler (POST /graphql/v2 with a JSON GraphQL body). */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => void this.answer(req, Buffer.concat(chunks).toString("utf8"), res));
  };

  private async answer(req: IncomingMessage, body: string, res: ServerResponse): Promise<void> {
    const authority = this.authority(req.headers.authorization);
    const record: RailwayRequest = { at: new Date().toISOString(), authority, fields: [], status: 200, outcome: "" };
    this.requests.push(record);
    const send = (status: number, payload: unknown, outcome: string) => {
      record.status = status;
      record.outcome = outcome;
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(payload));
    };
    if (req.method !== "POST" || (req.url ?? "").split("?")[0] !== RAILWAY_PATH) return send(404, { errors: [{ message: "Not Found" }] }, "refused: not found");
    let parsed: { query?: unknown; variables?: unknown; operationName?: unknown };
    try {
      parsed = JSON.parse(body) as typeof parsed;
    } catch {
      return send(400, { errors: [{ message: "Invalid JSON" }] }, "refused: invalid JSON");
    }
    if (authority === "none" || authority === "invalid") return send(401, { errors: [{ message: "Not Authorized" }] }, `refused: ${authority === "none" ? "no token" : "invalid token"}`);
    const outcomes: string[] = [];
    const may = (volumeId: string) => authority === "account" || ENVIRONMENT_OF[volumeId] === "staging";
    const rootValue = {
      me: () => (authority === "account" ? "account" : "staging project"),
      volumes: () => [...this.volumes].filter(may).map((id) => ({ id, name: id, environment: ENVIRONMENT_OF[id] })),
      volume: ({ id }: { id: string }) => {
        record.fields.push(`volume(${id})`);
        if (!may(id)) throw new Error("Not Authorized");
        return this.volumes.has(id) ? { id, name: id, environment: ENVIRONMENT_OF[id] } : null;
      },
      volumeDelete: ({ volumeId }: { volumeId: string }) => {
        record.fields.push(`volumeDelete(${volumeId})`);
        if (!may(volumeId)) {
          outcomes.push(`refused volumeDelete(${volumeId}): the ${authority} token cannot touch production`);
          throw new Error("Not Authorized");
        }
        if (!this.volumes.delete(volumeId)) throw new Error("Volume not found");
        outcomes.push(`deleted ${volumeId}`);
        return true;
      },
    };
    const result = await graphql({
      schema,
      source: typeof parsed.query === "string" ? parsed.query : "",
      rootValue,
      variableValues: (parsed.variables ?? undefined) as Record<string, unknown> | undefined,
      operationName: typeof parsed.operationName === "string" ? parsed.operationName : undefined,
    });
    send(200, result, outcomes.join("; ") || (result.errors ? `errors: ${result.errors.map((e) => e.message).join("; ")}` : "answered"));
  }
}
