/**
 * Audit events for tests and the benchmark, written the way the proxy worker writes them (one
 * multi-row INSERT through the chain trigger): realistic proxy decisions over a few agents,
 * tasks, services and environments, plus any hand-made event.
 */
import pg from "pg";

export interface GeneratedEvent {
  at?: Date;
  type: string;
  actorType: string;
  actorId: string | null;
  agentId?: string | null;
  taskId?: string | null;
  outcome?: string | null;
  effect?: string | null;
  reason?: string | null;
  ruleId?: string | null;
  data?: unknown;
}

const INSERT = `INSERT INTO audit_events (at, type, actor_type, actor_id, agent_id, task_id, outcome, effect, reason, rule_id, data)
SELECT v.at, v.type, v.actor_type, v.actor_id, v.agent_id, v.task_id, v.outcome, v.effect, v.reason, v.rule_id, v.data::jsonb
  FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::uuid[], $6::uuid[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])
       WITH ORDINALITY AS v(at, type, actor_type, actor_id, agent_id, task_id, outcome, effect, reason, rule_id, data, ord)
 ORDER BY v.ord
RETURNING seq::text AS seq`;

/** Inserts the events in order (one statement); returns their seqs. */
export async function insertEvents(client: pg.ClientBase | pg.Pool, events: GeneratedEvent[]): Promise<string[]> {
  const cols: unknown[][] = Array.from({ length: 11 }, () => []);
  for (const e of events) {
    const row = [e.at ?? new Date(), e.type, e.actorType, e.actorId, e.agentId ?? null, e.taskId ?? null, e.outcome ?? null, e.effect ?? null, e.reason ?? null, e.ruleId ?? null, JSON.stringify(e.data ?? {})];
    row.forEach((v, i) => cols[i]!.push(v));
  }
  const r = await client.query<{ seq: string }>(INSERT, cols);
  return r.rows.map((x) => x.seq);
}

export const SERVICES = [
  { service: "github", host: "api.github.com", environments: ["production"], ops: [["GET", "/repos/acme/app/issues", "issues.list", "read"], ["DELETE", "/repos/acme/app", "repos.delete", "irreversible"], ["POST", "/repos/acme/app/pulls", "pulls.create", "write"]] },
  { service: "railway", host: "backboard.railway.com", environments: ["production", "staging"], ops: [["POST", "/graphql/v2", "volumeDelete", "irreversible"], ["POST", "/graphql/v2", "project", "read"], ["POST", "/graphql/v2", "serviceInstanceRedeploy", "write"]] },
  { service: "orders-db", host: "sql.internal.test", environments: ["production", "staging", "development"], ops: [["POST", "/sql", "select", "read"], ["POST", "/sql", "delete", "destructive"], ["POST", "/sql", "drop_table", "destructive"]] },
] as const;

/** A deterministic pseudo-random generator (mulberry32), so generated logs are reproducible. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Fleet {
  agents: Array<{ id: string; name: string }>;
  tasks: Array<{ id: string; agentId: string }>;
}

/**
 * `n` proxy decisions spread over the fleet and the services, newest `at` last, starting at
 * `start` and `stepMs` apart: ~70% allow, ~20% deny, ~7% hold, ~3% approved; resources such as
 * vol_0042 and issue numbers so that free text finds a few of them.
 */
export function proxyDecisions(fleet: Fleet, n: number, options: { seed?: number; start?: Date; stepMs?: number } = {}): GeneratedEvent[] {
  const rnd = random(options.seed ?? 1);
  const start = options.start?.getTime() ?? Date.now() - n * (options.stepMs ?? 1);
  const out: GeneratedEvent[] = [];
  for (let i = 0; i < n; i++) {
    const task = fleet.tasks[Math.floor(rnd() * fleet.tasks.length)]!;
    const svc = SERVICES[Math.floor(rnd() * SERVICES.length)]!;
    const env = svc.environments[Math.floor(rnd() * svc.environments.length)]!;
    const [method, path, operation, effect] = svc.ops[Math.floor(rnd() * svc.ops.length)]!;
    const resource = svc.service === "railway" ? `vol_${String(Math.floor(rnd() * 10_000)).padStart(4, "0")}` : svc.service === "github" ? `acme/app#${Math.floor(rnd() * 100_000)}` : `orders_${Math.floor(rnd() * 1000)}`;
    const r = rnd();
    const outcome = r < 0.7 ? "allow" : r < 0.9 ? "deny" : r < 0.97 ? "hold" : "allow";
    const type = r < 0.9 ? "proxy.decision" : r < 0.97 ? "proxy.hold" : "proxy.approved";
    const eventId = `ev-${options.seed ?? 1}-${i}`;
    out.push({
      at: new Date(start + i * (options.stepMs ?? 1)),
      type,
      actorType: "agent",
      actorId: task.agentId,
      agentId: task.agentId,
      taskId: task.id,
      outcome,
      effect,
      reason: outcome === "deny" ? `no rule allows ${effect} ${operation} on ${svc.service} ${env}` : outcome === "hold" ? `${effect} ${operation} held for approval` : `rule allows ${operation}`,
      ruleId: outcome === "deny" ? null : `rule-${Math.floor(rnd() * 5)}`,
      data: {
        eventId,
        listener: "explicit",
        client: "127.0.0.1",
        method,
        url: `https://${svc.host}${path}${svc.service === "github" ? `?page=${Math.floor(rnd() * 10)}` : ""}`,
        service: svc.service,
        actions: [{ service: svc.service, environment: env, resource, operation, effect, detail: {} }],
        mode: "enforce",
        ...(outcome === "deny" ? { code: "policy_deny", kind: "denied" } : {}),
      },
    });
  }
  return out;
}

/**
 * `n` proxy decisions generated inside PostgreSQL (no rows held in this process), in statements
 * of `chunk` rows: the same mix as `proxyDecisions`, for logs of 100k-1M events.
 */
export async function bulkProxyDecisions(client: pg.ClientBase | pg.Pool, fleet: Fleet, n: number, options: { chunk?: number; start?: Date; stepMs?: number } = {}): Promise<void> {
  const chunk = options.chunk ?? 50_000;
  const step = options.stepMs ?? 1;
  const start = options.start ?? new Date(Date.now() - n * step);
  const tasks = fleet.tasks.map((t) => t.id);
  const agents = fleet.tasks.map((t) => t.agentId);
  for (let done = 0; done < n; done += chunk) {
    const size = Math.min(chunk, n - done);
    await client.query(
      `WITH g AS (
         SELECT i, $3::timestamptz + make_interval(secs => i * $6::float8 / 1000.0) AS at,
                1 + (hashint4(i) & 2147483647) % cardinality($1::uuid[]) AS t,
                (hashint4(i * 7) & 2147483647) % 100 AS r,
                (hashint4(i * 13) & 2147483647) % 9 AS op,
                (hashint4(i * 31) & 2147483647) % 10000 AS res
           FROM generate_series($4::int, $4::int + $5::int - 1) AS i),
       s AS (
         SELECT g.*, ($1::uuid[])[t] AS task_id, ($2::uuid[])[t] AS agent_id,
                (ARRAY['github','railway','orders-db'])[1 + op / 3] AS service,
                (ARRAY['issues.list','repos.delete','pulls.create','volumeDelete','project','serviceInstanceRedeploy','select','delete','drop_table'])[1 + op] AS operation,
                (ARRAY['read','irreversible','write','irreversible','read','write','read','destructive','destructive'])[1 + op] AS effect,
                (ARRAY['GET','DELETE','POST','POST','POST','POST','POST','POST','POST'])[1 + op] AS method,
                (ARRAY['api.github.com/repos/acme/app/issues','api.github.com/repos/acme/app','api.github.com/repos/acme/app/pulls',
                       'backboard.railway.com/graphql/v2','backboard.railway.com/graphql/v2','backboard.railway.com/graphql/v2',
                       'sql.internal.test/sql','sql.internal.test/sql','sql.internal.test/sql'])[1 + op] AS target,
                (ARRAY['production','staging','development'])[1 + (res % CASE op / 3 WHEN 0 THEN 1 WHEN 1 THEN 2 ELSE 3 END)] AS environment,
                CASE WHEN r < 70 THEN 'allow' WHEN r < 90 THEN 'deny' WHEN r < 97 THEN 'hold' ELSE 'allow' END AS outcome,
                CASE WHEN r < 90 THEN 'proxy.decision' WHEN r < 97 THEN 'proxy.hold' ELSE 'proxy.approved' END AS type,
                CASE op / 3 WHEN 1 THEN 'vol_' || lpad(res::text, 4, '0') WHEN 0 THEN 'acme/app#' || res ELSE 'orders_' || (res % 1000) END AS resource
           FROM g)
       INSERT INTO audit_events (at, type, actor_type, actor_id, agent_id, task_id, outcome, effect, reason, rule_id, data)
       SELECT at, type, 'agent', agent_id::text, agent_id, task_id, outcome, effect,
              CASE outcome WHEN 'deny' THEN 'no rule allows ' || effect || ' ' || operation || ' on ' || service || ' ' || environment
                           WHEN 'hold' THEN effect || ' ' || operation || ' held for approval' ELSE 'rule allows ' || operation END,
              CASE WHEN outcome = 'deny' THEN NULL ELSE 'rule-' || (res % 5) END,
              jsonb_build_object('eventId', 'bulk-' || i, 'listener', 'explicit', 'client', '127.0.0.1', 'method', method,
                                 'url', 'https://' || target, 'service', service, 'mode', 'enforce',
                                 'actions', jsonb_build_array(jsonb_build_object('service', service, 'environment', environment,
                                            'resource', resource, 'operation', operation, 'effect', effect, 'detail', '{}'::jsonb)))
                || CASE WHEN outcome = 'deny' THEN '{"code": "policy_deny", "kind": "denied"}'::jsonb ELSE '{}'::jsonb END
         FROM s ORDER BY i`,
      [tasks, agents, start.toISOString(), done + 1, size, step],
    );
  }
}
