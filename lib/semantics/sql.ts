/**
 * SQL classification with the real PostgreSQL grammar (libpg-query, compiled to WASM).
 * Every statement is classified; the request's effect is the most severe. SQL that does not
 * parse is irreversible ("unparseable SQL"): what the server would make of it is unknown.
 *
 * The WASM module loads asynchronously: call `loadSqlParser()` once at start-up (the module
 * also starts loading on import). Until it is ready, SQL is treated as unparseable.
 */
import { loadModule, parseSync } from "libpg-query";
import { STATEMENTS, genericHandler, kindWords } from "@/lib/semantics/sql-statements";
import { collectCteNames, newContext, TooManyNodesError, unwrap, walk, type SharedBudget, type SqlAction } from "@/lib/semantics/sql-walk";
import { maxEffectOf, reject, type Effect, type Rejection } from "@/lib/semantics/types";

export type { SqlAction } from "@/lib/semantics/sql-walk";

export interface SqlClassification {
  actions: SqlAction[];
  effect: Effect;
}

const MAX_SQL_LENGTH = 1_000_000;
let ready = false;
let loading: Promise<void> | null = null;

export function loadSqlParser(): Promise<void> {
  loading ??= loadModule().then(
    () => {
      ready = true;
    },
    (error: unknown) => {
      loading = null; // allow a retry
      throw error;
    },
  );
  return loading;
}
loadSqlParser().catch(() => undefined);

export function sqlParserReady(): boolean {
  return ready;
}

function unparseable(note: string): SqlClassification {
  return { actions: [{ operation: "UNPARSEABLE", effect: "irreversible", resource: "-", statement: 0, note }], effect: "irreversible" };
}

interface RawStatement {
  stmt?: unknown;
}

export interface SqlOptions {
  database?: string | undefined;
  /** Functions the service declares read-only (`name` or `schema.name`). */
  readOnlyFunctions?: readonly string[] | undefined;
}

/**
 * What one request may ask Bulkhead to analyse, over all its SQL texts (a batch shares one
 * budget). Parsing and walking cost time linear in the text, but on the worker's event loop: a
 * 1 MB body of `select 1;` took 1.3 s to classify and stalled every other agent's requests.
 * Beyond a limit the request is refused (see docs/policy.md, "SQL classification").
 */
export const SQL_LIMITS = {
  /** Characters of SQL text (parsing costs up to ~1.4 µs per character). */
  maxChars: 64 * 1024,
  /** Statements, counted after parsing and before any is walked. */
  maxStatements: 500,
  /** Parse-tree nodes walked. */
  maxNodes: 25_000,
  /** Actions produced (each side-effecting or unknown function call is one). */
  maxActions: 2_000,
} as const;

export interface SqlBudget {
  chars: number;
  statements: number;
  nodes: SharedBudget;
  actions: number;
}

export function newSqlBudget(): SqlBudget {
  return { chars: SQL_LIMITS.maxChars, statements: SQL_LIMITS.maxStatements, nodes: { nodes: SQL_LIMITS.maxNodes }, actions: SQL_LIMITS.maxActions };
}

/** Classifies one text standalone: beyond the limits it is unparseable (irreversible). */
export function classifySql(sql: string, options: SqlOptions = {}): SqlClassification {
  if (typeof sql === "string" && sql.length > MAX_SQL_LENGTH) return unparseable("unparseable SQL: text too long to analyse");
  const result = classifySqlWithin(sql, options, newSqlBudget());
  return "ok" in result ? unparseable(`unparseable SQL: ${result.reason}`) : result;
}

/** Classifies one text of a request against the request's budget; a refusal beyond it. */
export function classifySqlWithin(sql: string, options: SqlOptions, budget: SqlBudget): SqlClassification | Rejection {
  const database = options.database ?? "-";
  if (typeof sql !== "string") return unparseable("unparseable SQL: not text");
  budget.chars -= sql.length;
  if (budget.chars < 0) {
    return reject("sql_too_large", `the request carries more than ${SQL_LIMITS.maxChars} characters of SQL, more than Bulkhead analyses in one request; send fewer statements per request`);
  }
  // The parser reads a C string and stops at the first NUL; a server might not.
  if (sql.includes("\0")) return unparseable("unparseable SQL: contains a NUL character");
  if (!ready) return unparseable("unparseable SQL: the SQL parser is not loaded");
  if (sql.trim() === "") return { actions: [{ operation: "EMPTY", effect: "read", resource: database, statement: 0 }], effect: "read" };
  let stmts: RawStatement[];
  try {
    stmts = (parseSync(sql).stmts ?? []) as RawStatement[];
  } catch (error) {
    const message = error instanceof Error ? error.message : "parse error";
    return unparseable(`unparseable SQL: ${message}`);
  }
  budget.statements -= stmts.length;
  if (budget.statements < 0) {
    return reject("sql_too_many_statements", `the request carries more than ${SQL_LIMITS.maxStatements} SQL statements, more than Bulkhead analyses in one request; send fewer per request`);
  }
  let actions: SqlAction[];
  try {
    const readOnly = new Set(options.readOnlyFunctions ?? []);
    actions = stmts.flatMap((raw, index) => classifyStatement(raw, index, database, readOnly, budget.nodes));
  } catch (error) {
    if (error instanceof TooManyNodesError) {
      return reject("sql_too_complex", `the request's SQL has more than ${SQL_LIMITS.maxNodes} parse-tree nodes, more than Bulkhead analyses in one request`);
    }
    // Pathologically deep trees: refuse to reason about them rather than guess.
    return unparseable("unparseable SQL: statement too complex to analyse");
  }
  budget.actions -= actions.length;
  if (budget.actions < 0) {
    return reject("sql_too_complex", `the request's SQL yields more than ${SQL_LIMITS.maxActions} actions (function calls, tables, statements), more than Bulkhead analyses in one request`);
  }
  if (actions.length === 0) actions.push({ operation: "EMPTY", effect: "read", resource: database, statement: 0 });
  return { actions, effect: maxEffectOf(actions.map((a) => a.effect)) };
}

function classifyStatement(raw: RawStatement, index: number, database: string, readOnly: ReadonlySet<string>, budget: SharedBudget): SqlAction[] {
  const ctx = newContext(index, readOnly, budget, database);
  const wrapped = unwrap(raw.stmt);
  if (!wrapped) return [{ operation: "UNKNOWN", effect: "irreversible", resource: database, statement: index, note: "statement not recognised" }];
  const [kind, body] = wrapped;
  collectCteNames(body, ctx.ctes);
  const handler = Object.hasOwn(STATEMENTS, kind) ? STATEMENTS[kind] : genericHandler(kind);
  if (kind === "SelectStmt" || kind === "InsertStmt" || kind === "UpdateStmt" || kind === "DeleteStmt" || kind === "MergeStmt") {
    walk(raw.stmt, ctx);
  } else if (handler) {
    handler(body, ctx, database);
  } else {
    ctx.actions.push({
      operation: kindWords(kind),
      effect: "irreversible",
      resource: database,
      statement: index,
      note: `statement kind ${kind} is not classified`,
    });
  }
  const operation = kind === "SelectStmt" ? "SELECT" : kindWords(kind);
  for (const rel of ctx.reads) {
    if (!ctx.targets.has(rel)) ctx.actions.push({ operation: "SELECT", effect: "read", resource: rel, resourceKind: "table", statement: index });
  }
  if (ctx.actions.length === 0) ctx.actions.push({ operation, effect: "read", resource: database, statement: index });
  // After a search_path set earlier in the request (or in this statement), an unqualified table
  // may be one of its schemas': deny rules naming `hr.payroll` see `payroll` then (decide.ts).
  const path = budget.searchPath;
  if (path && path.length > 0) {
    for (const action of ctx.actions) if (action.resourceKind === "table" && !action.resource.includes(".")) action.searchPath = path;
  }
  return ctx.actions;
}
