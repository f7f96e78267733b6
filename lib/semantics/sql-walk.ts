/**
 * Walking a libpg-query parse tree. Data-modifying statements can hide anywhere (a CTE, a
 * subquery, `COPY (…) TO`), so the walk visits every node: nested INSERT/UPDATE/DELETE/MERGE
 * become actions of their own, side-effecting function calls become actions, locking and
 * `SELECT … INTO` become writes, and every relation touched is remembered as a read.
 */
import { functionEffect, operatorEffect } from "@/lib/semantics/sql-functions";
import type { Effect } from "@/lib/semantics/types";

export type PgNode = Record<string, unknown>;

export interface SqlAction {
  operation: string;
  effect: Effect;
  /** Table (`schema.table`), database, role or "-". */
  resource: string;
  resourceKind?: string;
  /** Index of the statement in the SQL text. */
  statement: number;
  note?: string;
  /** For an unqualified table: the schemas a search_path set earlier in the request names. */
  searchPath?: readonly string[];
}

/**
 * What the statements of one request share: the parse-tree nodes they may still visit, and the
 * search_path an earlier statement set (`SET search_path = hr`, `set_config('search_path', …)`),
 * under which a later unqualified table may be another schema's (`payroll` is `hr.payroll`).
 */
export interface SharedBudget {
  nodes: number;
  searchPath?: readonly string[];
}

export interface WalkContext {
  statement: number;
  actions: SqlAction[];
  /** Relations referenced, in order of appearance. */
  reads: Set<string>;
  /** Relations some action already covers (not repeated as reads). */
  targets: Set<string>;
  /** Unqualified CTE names: references to them are not tables. */
  ctes: Set<string>;
  depth: number;
  /** Functions the service declares read-only (`name` or `schema.name`). */
  readOnlyFunctions: ReadonlySet<string>;
  /** Parse-tree nodes the request may still visit, and its search_path, shared by its statements (see `sql.ts`). */
  budget: SharedBudget;
  /** The database statements that name no table act on. */
  database: string;
}

export class TooDeepError extends Error {}
/** The request's parse trees are larger than Bulkhead analyses (`SQL_LIMITS.maxNodes`). */
export class TooManyNodesError extends Error {}
const MAX_DEPTH = 2000;

/**
 * A statement other than SELECT and DML found inside another one: `EXPLAIN ANALYZE` runs its
 * statement (`EXECUTE p`, `CREATE TABLE … AS`), `CREATE TABLE … AS EXECUTE p` runs `p`, a rule runs
 * its `NOTIFY`. They are classified by the statement table of `sql-statements.ts`, which registers
 * itself here (it imports this module, so it cannot be imported from it). Until it has, such a
 * statement is irreversible: it runs, and nothing here knows what it does.
 */
type NestedHandler = (kind: string, body: PgNode, ctx: WalkContext) => void;
let nestedHandler: NestedHandler | null = null;
export function setNestedStatementHandler(handler: NestedHandler): void {
  nestedHandler = handler;
}

const DML_KINDS = new Set(["InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"]);

export function isObject(value: unknown): value is PgNode {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `{ Kind: body }` wrappers used throughout the tree. */
export function unwrap(value: unknown): [string, PgNode] | null {
  if (!isObject(value)) return null;
  const keys = Object.keys(value);
  if (keys.length !== 1) return null;
  const kind = keys[0] as string;
  const body = value[kind];
  return /^[A-Z]/.test(kind) && isObject(body) ? [kind, body] : null;
}

export function str(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/** "catalog.schema.table" from a RangeVar body (wrapped or not). */
export function relationName(value: unknown): string | null {
  const node = unwrap(value)?.[0] === "RangeVar" ? (value as PgNode)["RangeVar"] : value;
  if (!isObject(node) || typeof node["relname"] !== "string") return null;
  return [str(node["catalogname"]), str(node["schemaname"]), node["relname"]].filter((p) => p).join(".");
}

/** The `sval`s of a list of `String` nodes. */
export function namePartsOf(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  return list.map((item) => str((unwrap(item)?.[1] ?? {})["sval"]) ?? "").filter((s) => s);
}

/** The `sval`s of a list of `String` nodes, joined with ".". */
export function nameOf(list: unknown): string {
  return namePartsOf(list).join(".");
}

export function push(ctx: WalkContext, action: Omit<SqlAction, "statement">): void {
  ctx.actions.push({ ...action, statement: ctx.statement });
  if (action.resourceKind === "table") ctx.targets.add(action.resource);
}

/** Does the expression mention a column outside sub-selects? (`WHERE true`, `WHERE 1=1` do not.) */
function mentionsColumn(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(mentionsColumn);
  if (!isObject(value)) return false;
  for (const [key, child] of Object.entries(value)) {
    if (key === "ColumnRef" || key === "CurrentOfExpr") return true;
    if (key === "subselect") continue;
    if (mentionsColumn(child)) return true;
  }
  return false;
}

/**
 * Does the WHERE clause restrict rows at all, as far as its boolean structure shows? A clause
 * that mentions no column (`WHERE true`, `WHERE 1=1`, `WHERE $1`) does not. Neither does a
 * disjunction one of whose branches mentions no column: `WHERE id = 1 OR 1=1`, `WHERE id = $1
 * OR $1 IS NULL` (every row when the parameter is null) and `WHERE id = 1 OR true` affect every
 * row whatever the column says. A conjunction restricts when one of its branches does; `NOT`
 * swaps the two (`NOT (id = 1 AND false)` is `id <> 1 OR true`). What a branch that mentions a
 * column computes is not analysed (`WHERE id = id` is still taken to restrict).
 */
function restrictsRows(value: unknown, negated = false): boolean {
  const node = isObject(value) ? value["BoolExpr"] : undefined;
  if (!isObject(node) || !Array.isArray(node["args"])) return mentionsColumn(value);
  const args = node["args"] as unknown[];
  const op = node["boolop"];
  if (op === "NOT_EXPR") return args.every((arg) => restrictsRows(arg, !negated));
  const conjunction = (op === "AND_EXPR") !== negated;
  if (op !== "AND_EXPR" && op !== "OR_EXPR") return mentionsColumn(value);
  return conjunction ? args.some((arg) => restrictsRows(arg, negated)) : args.length > 0 && args.every((arg) => restrictsRows(arg, negated));
}

function dml(kind: string, body: PgNode, ctx: WalkContext): void {
  const target = relationName(body["relation"]) ?? "-";
  const operation = kind.replace(/Stmt$/, "").toUpperCase();
  let effect: Effect = "write";
  let note: string | undefined;
  if (kind === "UpdateStmt" || kind === "DeleteStmt") {
    if (!restrictsRows(body["whereClause"])) {
      effect = "destructive";
      note = body["whereClause"] === undefined ? "no WHERE clause: affects every row" : "WHERE clause does not restrict rows";
    }
  } else if (kind === "MergeStmt") {
    const clauses = Array.isArray(body["mergeWhenClauses"]) ? body["mergeWhenClauses"] : [];
    if (clauses.some((c) => unwrap(c)?.[1]["commandType"] === "CMD_DELETE")) {
      effect = "destructive";
      note = "MERGE … THEN DELETE";
    }
  }
  push(ctx, { operation, effect, resource: target, resourceKind: "table", ...(note ? { note } : {}) });
  walkChildren(body, ctx, "relation");
}

function select(body: PgNode, ctx: WalkContext): void {
  const into = body["intoClause"];
  if (isObject(into)) {
    const target = relationName(into["rel"]) ?? "-";
    push(ctx, { operation: "SELECT INTO", effect: "write", resource: target, resourceKind: "table" });
  }
  const locking = Array.isArray(body["lockingClause"]) ? body["lockingClause"] : [];
  if (locking.length > 0) {
    const locked = new Set<string>();
    collectRelations(body["fromClause"], locked);
    const strength = str(unwrap(locking[0])?.[1]["strength"]) ?? "";
    const operation = strength.includes("SHARE") ? "SELECT FOR SHARE" : "SELECT FOR UPDATE";
    if (locked.size === 0) locked.add("-");
    for (const rel of locked) push(ctx, { operation, effect: "write", resource: rel, resourceKind: "table", note: "row locks" });
  }
  walkChildren(body, ctx, "intoClause");
}

function collectRelations(value: unknown, out: Set<string>): void {
  if (Array.isArray(value)) return value.forEach((v) => collectRelations(v, out));
  if (!isObject(value)) return;
  const name = relationName(value);
  if (name !== null) out.add(name);
  for (const child of Object.values(value)) collectRelations(child, out);
}

/** Built-ins that read the rows of a table named by their first argument (`table_to_xml('t', …)`). */
const TABLE_READERS = new Set(["table_to_xml", "table_to_xml_and_xmlschema"]);
/**
 * Built-ins that read the rows of every table of a schema or of the database (a logical slot's
 * peek returns the changed rows of every table it decodes).
 */
const BULK_READERS = new Set([
  "schema_to_xml", "schema_to_xml_and_xmlschema", "database_to_xml", "database_to_xml_and_xmlschema",
  "pg_logical_slot_peek_changes", "pg_logical_slot_peek_binary_changes",
]);

/** A string constant, also cast (`'t'::regclass`), or null. */
export function stringConstant(node: unknown): string | null {
  let wrapped = unwrap(node);
  if (wrapped?.[0] === "TypeCast") wrapped = unwrap(wrapped[1]["arg"]);
  if (wrapped?.[0] !== "A_Const" || !isObject(wrapped[1]["sval"])) return null;
  return str(wrapped[1]["sval"]["sval"]) ?? null;
}

/**
 * Names separated by `separator` as PostgreSQL splits them (`SplitIdentifierString`: a relation
 * name for `regclass` with ".", a search path with ","): whitespace around each name, unquoted ones
 * lower-cased, double-quoted ones kept (`""` is one `"`). Null for an empty name, an unterminated
 * quote or anything else between names; an empty text is no names.
 */
export function splitIdentifiers(text: string, separator: "." | ","): string[] | null {
  const names: string[] = [];
  const space = (c: string | undefined) => c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\f" || c === "\v";
  let i = 0;
  while (space(text[i])) i++;
  if (i >= text.length) return names;
  for (;;) {
    let name = "";
    if (text[i] === '"') {
      for (i++; ; i++) {
        if (i >= text.length) return null;
        if (text[i] === '"') {
          if (text[i + 1] !== '"') break;
          i++;
        }
        name += text[i];
      }
      i++;
    } else {
      while (i < text.length && text[i] !== separator && !space(text[i])) name += text[i++];
      name = name.toLowerCase();
    }
    if (name === "") return null;
    names.push(name);
    while (space(text[i])) i++;
    if (i >= text.length) return names;
    if (text[i] !== separator) return null;
    i++;
    while (space(text[i])) i++;
  }
}

/** A relation name as `regclass` input reads it (at most database.schema.table), or null. */
function regclassName(text: string): string | null {
  const parts = splitIdentifiers(text, ".");
  return parts !== null && parts.length >= 1 && parts.length <= 3 ? parts.join(".") : null;
}

/**
 * Built-ins that read table rows without naming the table in the FROM clause: the table becomes a
 * read of that table (as `SELECT * FROM t` is), so a rule about the table applies. When the table
 * is not a constant, or the function reads a whole schema or database, which table rules cannot
 * be matched against, the call is irreversible (not analysable), never a read of nothing.
 */
function tableReader(name: string, body: PgNode, ctx: WalkContext): void {
  const args = Array.isArray(body["args"]) ? body["args"] : [];
  if (TABLE_READERS.has(name)) {
    const literal = stringConstant(args[0]);
    const table = literal === null ? null : regclassName(literal);
    if (table !== null) {
      ctx.reads.add(table);
      return;
    }
    push(ctx, { operation: name, effect: "irreversible", resource: "-", resourceKind: "function", note: "reads a table named at run time: rules about tables cannot be applied" });
    return;
  }
  push(ctx, { operation: name, effect: "irreversible", resource: ctx.database, resourceKind: "function", note: "reads rows of every table of a schema or of the database: rules about tables cannot be applied" });
}

/**
 * Whether a search path puts another schema before `pg_catalog`. PostgreSQL searches pg_catalog
 * first when the path does not name it; named later, an unqualified built-in name (`lower()`,
 * `=`) in the statements that follow finds a function or operator of that name in an earlier
 * schema first, so what they run is no longer what their text shows.
 */
export function searchPathShadowsCatalog(schemas: readonly string[]): boolean {
  return schemas.indexOf("pg_catalog") > 0;
}

const RUNS_COMMAND = "the server runs its value as a shell command, as COPY … PROGRAM does";
const LOADS_LIBRARY = "the server loads the shared libraries it names, as LOAD does";
const WRITES_FILE = "the server writes its log to the file it names, as COPY … TO 'file' does";

/**
 * Settings that are irreversible whichever way they are set (`SET`, `ALTER ROLE|DATABASE … SET`,
 * `ALTER SYSTEM SET`, `set_config`), with why: `standard_conforming_strings` changes how the
 * server reads string literals in later statements, which Bulkhead parses with the default (with
 * it off, `SELECT 'a\'' ; DROP TABLE t; --'` is one string here and a DROP there), as a
 * `client_encoding` other than UTF-8 changes how it decodes their bytes (below); the others
 * make the server run a shell command, load a shared library or write a file of its choosing,
 * which the statements that do so directly already are.
 */
const IRREVERSIBLE_SETTINGS: ReadonlyMap<string, string> = new Map([
  ["standard_conforming_strings", "changes how later SQL is parsed"],
  ["archive_command", RUNS_COMMAND],
  ["archive_cleanup_command", RUNS_COMMAND],
  ["restore_command", RUNS_COMMAND],
  ["recovery_end_command", RUNS_COMMAND],
  ["ssl_passphrase_command", RUNS_COMMAND],
  ["archive_library", LOADS_LIBRARY],
  ["shared_preload_libraries", LOADS_LIBRARY],
  ["session_preload_libraries", LOADS_LIBRARY],
  ["local_preload_libraries", LOADS_LIBRARY],
  ["dynamic_library_path", LOADS_LIBRARY],
  ["jit_provider", LOADS_LIBRARY],
  ["log_directory", WRITES_FILE],
  ["log_filename", WRITES_FILE],
]);

const CHANGES_DECODING =
  "the server decodes later SQL text in this encoding, which Bulkhead reads as UTF-8: in SJIS, BIG5 or GBK a backslash can be the second byte of a character, so `E'Á\\' ), d AS (DELETE …` closes its string there and not here";
/** PostgreSQL's names for UTF-8, as it compares encoding names (letters and digits only, any case). */
const UTF8_NAMES = new Set(["utf8", "unicode"]);

/**
 * Why setting `name` (any case, trimmed) to `value` is irreversible, or null. `value` is the
 * constant set (null when it is computed at run time, undefined for RESET or DEFAULT); only
 * `client_encoding` depends on it: UTF-8, or back to the connection's own, changes nothing.
 */
export function irreversibleSetting(name: string, value?: string | null): string | null {
  const key = name.trim().toLowerCase();
  if (key === "client_encoding") {
    if (value === undefined) return null;
    return value !== null && UTF8_NAMES.has(value.toLowerCase().replace(/[^a-z0-9]/g, "")) ? null : CHANGES_DECODING;
  }
  return IRREVERSIBLE_SETTINGS.get(key) ?? null;
}


/**
 * `set_config('search_path', value, …)` that puts a schema before pg_catalog, or whose setting or
 * value is not a constant (it may be search_path): irreversible, as `SET search_path` is
 * (sql-statements.ts). Null for any other setting: the function's own rule applies.
 */
function searchPathConfig(body: PgNode): { note: string } | null {
  const args = Array.isArray(body["args"]) ? body["args"] : [];
  const setting = stringConstant(args[0]);
  if (setting !== null && setting.trim().toLowerCase() !== "search_path") return null;
  const value = stringConstant(args[1]);
  const schemas = setting === null || value === null ? null : splitIdentifiers(value, ",");
  if (schemas !== null && !searchPathShadowsCatalog(schemas)) return null;
  return { note: schemas === null ? "may set search_path to a value not known here: built-in names in later statements may then run other functions" : "puts a schema before pg_catalog in search_path: built-in names in later statements may then run that schema's functions" };
}

function funcCall(body: PgNode, ctx: WalkContext): void {
  const parts = namePartsOf(body["funcname"]);
  const rule = functionEffect(parts, ctx.readOnlyFunctions);
  const fn = (parts[parts.length - 1] ?? "").toLowerCase();
  if (fn === "set_config" && (parts.length === 1 || (parts.length === 2 && parts[0] === "pg_catalog"))) {
    const shadowing = searchPathConfig(body);
    if (shadowing) return push(ctx, { operation: "set_config", effect: "irreversible", resource: "-", resourceKind: "function", note: shadowing.note });
    const pathArgs: unknown[] = Array.isArray(body["args"]) ? body["args"] : [];
    if (stringConstant(pathArgs[0])?.trim().toLowerCase() === "search_path") {
      const value = stringConstant(pathArgs[1]);
      const schemas = value === null ? null : splitIdentifiers(value, ",");
      if (schemas !== null) ctx.budget.searchPath = schemas;
    }
    // `set_config('standard_conforming_strings', 'off', false)` is `SET standard_conforming_strings`.
    const args: unknown[] = Array.isArray(body["args"]) ? body["args"] : [];
    const setting = stringConstant(args[0]);
    const why = setting === null ? null : irreversibleSetting(setting, stringConstant(args[1]));
    if (why !== null) return push(ctx, { operation: "set_config", effect: "irreversible", resource: "-", resourceKind: "function", note: `sets ${setting?.trim().toLowerCase()}: ${why}` });
  }
  if (!rule) {
    const name = parts[parts.length - 1] ?? "";
    const builtin = parts.length === 1 || (parts.length === 2 && parts[0] === "pg_catalog");
    if (builtin && (TABLE_READERS.has(name) || BULK_READERS.has(name))) tableReader(name, body, ctx);
    return;
  }
  // Known side effects keep their plain name; an unknown function is named as it was called.
  const operation = rule.unknown ? parts.join(".") : (parts.at(-1) ?? "").toLowerCase();
  push(ctx, { operation, effect: rule.effect, resource: "-", resourceKind: "function", note: rule.note });
}

function operator(body: PgNode, ctx: WalkContext): void {
  const kind = str(body["kind"]) ?? "";
  if (kind.includes("BETWEEN")) return; // spelled as words, always built-in comparisons
  namedOperator(body["name"], ctx);
}

/**
 * An operator named anywhere in the tree, not only between two operands (`A_Expr`): before a
 * sub-select (`x OPERATOR(public.=) ANY (SELECT …)`, `SubLink.operName`) and in an ordering
 * (`ORDER BY x USING ###`, `SortBy.useOp`). Each runs the operator's function.
 */
function namedOperator(list: unknown, ctx: WalkContext): void {
  const parts = namePartsOf(list);
  if (parts.length === 0) return;
  const rule = operatorEffect(parts);
  if (rule) push(ctx, { operation: `OPERATOR(${parts.join(".")})`, effect: rule.effect, resource: "-", resourceKind: "operator", note: rule.note });
}

/** Visits one node of any kind: statements nested anywhere are classified like top-level ones. */
export function walk(value: unknown, ctx: WalkContext): void {
  if (++ctx.depth > MAX_DEPTH) throw new TooDeepError("statement nested too deeply");
  if (--ctx.budget.nodes < 0) throw new TooManyNodesError("too many parse-tree nodes");
  try {
    if (Array.isArray(value)) {
      for (const item of value) walk(item, ctx);
      return;
    }
    if (!isObject(value)) return;
    const wrapped = unwrap(value);
    if (wrapped) {
      const [kind, body] = wrapped;
      if (DML_KINDS.has(kind)) return dml(kind, body, ctx);
      if (kind === "SelectStmt") return select(body, ctx);
      if (kind.endsWith("Stmt")) {
        if (nestedHandler) return nestedHandler(kind, body, ctx);
        return push(ctx, { operation: kind, effect: "irreversible", resource: ctx.database, note: `nested statement kind ${kind} is not classified` });
      }
      if (kind === "FuncCall") funcCall(body, ctx);
      if (kind === "A_Expr") operator(body, ctx);
      if (kind === "SubLink") namedOperator(body["operName"], ctx);
      if (kind === "SortBy") namedOperator(body["useOp"], ctx);
      if (kind === "CommonTableExpr" && typeof body["ctename"] === "string") ctx.ctes.add(body["ctename"]);
    }
    const rel = relationName(value);
    if (rel !== null && typeof (wrapped?.[1] ?? value)["relname"] === "string") {
      const unqualified = !rel.includes(".");
      if (!(unqualified && ctx.ctes.has(rel))) ctx.reads.add(rel);
      return;
    }
    walkChildren(wrapped ? wrapped[1] : value, ctx);
  } finally {
    ctx.depth--;
  }
}

export function walkChildren(body: PgNode, ctx: WalkContext, skip?: string): void {
  for (const [key, child] of Object.entries(body)) if (key !== skip) walk(child, ctx);
}

/** CTE names are collected before walking, so references that precede the definition resolve too. */
export function collectCteNames(value: unknown, out: Set<string>): void {
  if (Array.isArray(value)) return value.forEach((v) => collectCteNames(v, out));
  if (!isObject(value)) return;
  if (typeof value["ctename"] === "string") out.add(value["ctename"]);
  for (const child of Object.values(value)) collectCteNames(child, out);
}

const NONE: ReadonlySet<string> = new Set();

export function newContext(statement: number, readOnlyFunctions: ReadonlySet<string> = NONE, budget: SharedBudget = { nodes: Infinity }, database = "-"): WalkContext {
  return { statement, actions: [], reads: new Set(), targets: new Set(), ctes: new Set(), depth: 0, readOnlyFunctions, budget, database };
}
