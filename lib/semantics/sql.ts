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
import { collectCteNames, newContext, unwrap, walk, type SqlAction } from "@/lib/semantics/sql-walk";
import { maxEffectOf, type Effect } from "@/lib/semantics/types";

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

export function classifySql(sql: string, options: SqlOptions = {}): SqlClassification {
  const database = options.database ?? "-";
  if (typeof sql !== "string") return unparseable("unparseable SQL: not text");
  if (sql.length > MAX_SQL_LENGTH) return unparseable("unparseable SQL: text too long to analyse");
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
  try {
    const readOnly = new Set(options.readOnlyFunctions ?? []);
    const actions = stmts.flatMap((raw, index) => classifyStatement(raw, index, database, readOnly));
    if (actions.length === 0) actions.push({ operation: "EMPTY", effect: "read", resource: database, statement: 0 });
    return { actions, effect: maxEffectOf(actions.map((a) => a.effect)) };
  } catch {
    // Pathologically deep trees: refuse to reason about them rather than guess.
    return unparseable("unparseable SQL: statement too complex to analyse");
  }
}

function classifyStatement(raw: RawStatement, index: number, database: string, readOnly: ReadonlySet<string>): SqlAction[] {
  const ctx = newContext(index, readOnly);
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
  return ctx.actions;
}
