/**
 * Rules for each top-level PostgreSQL statement kind. Anything not listed here is treated as
 * irreversible: a new statement kind must be classified on purpose, never by default.
 */
import {
  isObject,
  nameOf,
  newContext,
  push,
  relationName,
  str,
  unwrap,
  walk,
  setNestedStatementHandler,
  searchPathShadowsCatalog,
  irreversibleSetting,
  stringConstant,
  walkChildren,
  type PgNode,
  type WalkContext,
} from "@/lib/semantics/sql-walk";
import type { Effect } from "@/lib/semantics/types";

type Handler = (body: PgNode, ctx: WalkContext, database: string) => void;

/** "OBJECT_MATVIEW" → "MATVIEW"; "AlterTableStmt" → "ALTER TABLE". */
const objectWord = (objtype: unknown): string => (str(objtype) ?? "OBJECT").replace(/^OBJECT_/, "").replace(/_/g, " ");
export function kindWords(kind: string): string {
  return kind.replace(/Stmt$/, "").replace(/([a-z])([A-Z])/g, "$1 $2").toUpperCase();
}

function objectName(node: unknown): string {
  const wrapped = unwrap(node);
  if (!wrapped) return "-";
  const [kind, body] = wrapped;
  if (kind === "List") return nameOf(body["items"]) || "-";
  if (kind === "String") return str(body["sval"]) ?? "-";
  if (kind === "ObjectWithArgs") return nameOf(body["objname"]) || "-";
  if (kind === "TypeName") return nameOf(body["names"]) || "-";
  if (kind === "RangeVar") return relationName(node) ?? "-";
  if (kind === "RoleSpec") return str(body["rolename"]) ?? "-";
  return "-";
}

const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);
const opaque = (operation: string, note: string, resource = "-"): Handler => (_body, ctx) =>
  push(ctx, { operation, effect: "irreversible", resource, note });

/** A write on the statement's `relation` (if any), then a walk for anything nested. */
const ddlWrite = (operation: string): Handler => (body, ctx) => {
  const rel = relationName(body["relation"]);
  push(ctx, { operation, effect: "write", resource: rel ?? "-", ...(rel ? { resourceKind: "table" } : {}) });
  walkChildren(body, ctx, "relation");
};

/**
 * Does the EXPLAIN run its statement? PostgreSQL reads every `analyze` option and the last one
 * wins (`EXPLAIN (ANALYZE false, ANALYZE true) DELETE …` deletes), so any option that is not
 * plainly false counts, wherever it stands.
 */
function explainAnalyzes(body: PgNode): boolean {
  return list(body["options"]).some((option) => {
    const def = unwrap(option)?.[1];
    if (!def || def["defname"] !== "analyze") return false;
    const arg = unwrap(def["arg"]);
    if (!arg) return true;
    const [kind, value] = arg;
    if (kind === "String") return !["false", "off", "0", "no"].includes((str(value["sval"]) ?? "").toLowerCase());
    if (kind === "Integer") return value["ival"] !== undefined && value["ival"] !== 0;
    if (kind === "Boolean") return value["boolval"] === true;
    return true;
  });
}

function explain(body: PgNode, ctx: WalkContext, database: string): void {
  // EXPLAIN ANALYZE runs the statement, whatever its kind (`EXECUTE p`, `CREATE TABLE … AS`):
  // `walk` classifies a nested non-DML statement by the table below.
  if (explainAnalyzes(body)) return walk(body["query"], ctx);
  const inner = newContext(ctx.statement, ctx.readOnlyFunctions, ctx.budget, database);
  walk(body["query"], inner);
  const resources = new Set([...inner.actions.map((a) => a.resource), ...inner.reads]);
  resources.delete("-");
  if (resources.size === 0) resources.add(database);
  for (const resource of resources) push(ctx, { operation: "EXPLAIN", effect: "read", resource, note: "plan only, not executed" });
}

function copy(body: PgNode, ctx: WalkContext): void {
  const rel = relationName(body["relation"]);
  const resource = rel ?? "-";
  const kind = rel ? { resourceKind: "table" } : {};
  if (body["is_program"] === true) {
    push(ctx, { operation: "COPY PROGRAM", effect: "irreversible", resource, note: "runs a shell command on the database server" });
  } else if (body["is_from"] === true) {
    push(ctx, { operation: "COPY FROM", effect: "write", resource, ...kind });
  } else if (typeof body["filename"] === "string") {
    push(ctx, { operation: "COPY TO FILE", effect: "irreversible", resource, note: "writes a file on the database server" });
  } else if (rel) {
    ctx.reads.add(rel);
  }
  walk(body["query"], ctx);
}

function alterTable(body: PgNode, ctx: WalkContext): void {
  const rel = relationName(body["relation"]) ?? "-";
  let effect: Effect = "write";
  for (const cmd of list(body["cmds"])) {
    const subtype = str(unwrap(cmd)?.[1]["subtype"]);
    if (subtype === "AT_DropColumn" || subtype === "AT_AlterColumnType") effect = "destructive";
  }
  push(ctx, { operation: `ALTER ${objectWord(body["objtype"])}`, effect, resource: rel, resourceKind: "table" });
  walkChildren(body, ctx, "relation");
}

/** Settings that cannot widen what the session may do. */
const HARMLESS_SETTINGS = new Set([
  "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout", "application_name", "timezone",
  "datestyle", "intervalstyle", "client_encoding", "extra_float_digits", "client_min_messages",
  "transaction_isolation", "work_mem", "bytea_output",
]);

function variableSet(body: PgNode, ctx: WalkContext, database: string): void {
  const name = (str(body["name"]) ?? "").toLowerCase();
  const kind = str(body["kind"]) ?? "";
  const verb = kind.startsWith("VAR_RESET") ? "RESET" : "SET";
  if (kind === "VAR_RESET_ALL") return push(ctx, { operation: "RESET ALL", effect: "write", resource: database, note: "resets the session role" });
  if (name === "role" || name === "session_authorization") {
    const operation = `${verb} ${name === "role" ? "ROLE" : "SESSION AUTHORIZATION"}`;
    return push(ctx, { operation, effect: "write", resource: database, note: "changes the privileges of the session" });
  }
  if (name === "search_path" && kind === "VAR_SET_VALUE") {
    // Each argument is one schema name (a quoted string too: `'a, b'` names one schema "a, b").
    const schemas = list(body["args"]).map((arg) => stringConstant(arg));
    if (schemas.some((s) => s === null) || searchPathShadowsCatalog(schemas as string[])) {
      return push(ctx, { operation: `${verb} search_path`, effect: "irreversible", resource: database, note: "puts a schema before pg_catalog: built-in function and operator names in later statements may then run that schema's functions" });
    }
    // Later unqualified tables of the request may be these schemas' (sql.ts).
    ctx.budget.searchPath = schemas as string[];
  } else if (name === "search_path" || kind === "VAR_RESET_ALL") {
    delete ctx.budget.searchPath;
  }
  // standard_conforming_strings changes how the server reads string literals in later statements,
  // which we parsed with the default, and a client_encoding other than UTF-8 how it decodes their
  // bytes; the others run a command, load a library or write a file.
  const value = kind === "VAR_SET_VALUE" ? stringConstant(list(body["args"])[0]) : undefined;
  const why = irreversibleSetting(name, value);
  if (why !== null) return push(ctx, { operation: `${verb} ${name}`, effect: "irreversible", resource: database, note: why });
  const effect: Effect = HARMLESS_SETTINGS.has(name) || name.startsWith("transaction") ? "read" : "write";
  push(ctx, { operation: `${verb} ${name || "?"}`.trim(), effect, resource: database });
}

function eachObject(operation: string, effect: Effect, key: string, resourceKind?: string): Handler {
  return (body, ctx, database) => {
    const objects = list(body[key]);
    if (objects.length === 0) push(ctx, { operation, effect, resource: database });
    for (const object of objects) {
      const resource = objectName(object);
      push(ctx, { operation, effect, resource, ...(resourceKind ? { resourceKind } : {}) });
    }
  };
}

/**
 * Transaction control is a read: what runs inside the transaction is judged statement by
 * statement. Two-phase commit is not: `PREPARE TRANSACTION` keeps the transaction's work and its
 * locks past the session (a write), `COMMIT PREPARED` makes permanent a transaction that any
 * session may have prepared, whose statements Bulkhead never saw (irreversible, like `EXECUTE`),
 * and `ROLLBACK PREPARED` throws such a transaction's work away (destructive).
 */
const transaction: Handler = (body, ctx, db) => {
  const kind = str(body["kind"]) ?? "";
  const gid = str(body["gid"]) ?? "-";
  if (kind === "TRANS_STMT_PREPARE") return push(ctx, { operation: "PREPARE TRANSACTION", effect: "write", resource: gid, note: "keeps the transaction's changes and locks after the session ends, until a COMMIT or ROLLBACK PREPARED" });
  if (kind === "TRANS_STMT_COMMIT_PREPARED") return opaque("COMMIT PREPARED", "commits a prepared transaction whose statements are not known here", gid)(body, ctx, db);
  if (kind === "TRANS_STMT_ROLLBACK_PREPARED") return push(ctx, { operation: "ROLLBACK PREPARED", effect: "destructive", resource: gid, note: "discards the work of a prepared transaction, which may be another session's" });
  const known = ["BEGIN", "START", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "ROLLBACK_TO"];
  const word = kind.replace(/^TRANS_STMT_/, "");
  // A kind this parser version adds is judged as unknown statements are, never as a read.
  if (!known.includes(word)) return opaque(`TRANSACTION ${word.replace(/_/g, " ") || "?"}`, "a transaction statement Bulkhead does not know");
  push(ctx, { operation: word.replace(/_/g, " "), effect: "read", resource: db });
};

export const STATEMENTS: Record<string, Handler> = {
  ExplainStmt: explain,
  PrepareStmt: (body, ctx) => walk(body["query"], ctx),
  DeclareCursorStmt: (body, ctx) => walk(body["query"], ctx),
  CopyStmt: copy,
  TruncateStmt: eachObject("TRUNCATE", "destructive", "relations", "table"),
  DropStmt: (body, ctx, db) => eachObject(`DROP ${objectWord(body["removeType"])}`, "irreversible", "objects", body["removeType"] === "OBJECT_TABLE" ? "table" : undefined)(body, ctx, db),
  DropdbStmt: (body, ctx) => push(ctx, { operation: "DROP DATABASE", effect: "irreversible", resource: str(body["dbname"]) ?? "-", resourceKind: "database" }),
  DropRoleStmt: eachObject("DROP ROLE", "irreversible", "roles", "role"),
  DropOwnedStmt: eachObject("DROP OWNED", "irreversible", "roles", "role"),
  AlterTableStmt: alterTable,
  VariableSetStmt: variableSet,
  VariableShowStmt: (_body, ctx, db) => push(ctx, { operation: "SHOW", effect: "read", resource: db }),
  TransactionStmt: transaction,
  DoStmt: opaque("DO", "procedural code cannot be analysed"),
  CreateFunctionStmt: (body, ctx) =>
    opaque(body["is_procedure"] === true ? "CREATE PROCEDURE" : "CREATE FUNCTION", "function bodies cannot be analysed", nameOf(body["funcname"]) || "-")(body, ctx, ""),
  ExecuteStmt: (body, ctx) => opaque("EXECUTE", "the prepared statement it runs is not known here", str(body["name"]) ?? "-")(body, ctx, ""),
  CallStmt: (body, ctx) => opaque("CALL", "procedure bodies cannot be analysed", isObject(body["funccall"]) ? nameOf(body["funccall"]["funcname"]) || "-" : "-")(body, ctx, ""),
  LoadStmt: opaque("LOAD", "loads a shared library into the server"),
  GrantStmt: (body, ctx, db) => eachObject(body["is_grant"] === true ? "GRANT" : "REVOKE", "write", "objects")(body, ctx, db),
  GrantRoleStmt: (body, ctx, db) => eachObject(body["is_grant"] === true ? "GRANT ROLE" : "REVOKE ROLE", "write", "grantee_roles", "role")(body, ctx, db),
  VacuumStmt: (body, ctx, db) => {
    const operation = body["is_vacuumcmd"] === true ? "VACUUM" : "ANALYZE";
    const rels = list(body["rels"]).map((r) => relationName(unwrap(r)?.[1]["relation"]) ?? "-");
    for (const resource of rels.length ? rels : [db]) push(ctx, { operation, effect: "write", resource });
  },
  LockStmt: eachObject("LOCK", "write", "relations", "table"),
  ListenStmt: (_b, ctx, db) => push(ctx, { operation: "LISTEN", effect: "read", resource: db }),
  UnlistenStmt: (_b, ctx, db) => push(ctx, { operation: "UNLISTEN", effect: "read", resource: db }),
  DeallocateStmt: (_b, ctx, db) => push(ctx, { operation: "DEALLOCATE", effect: "read", resource: db }),
  FetchStmt: (_b, ctx, db) => push(ctx, { operation: "FETCH", effect: "read", resource: db }),
  ClosePortalStmt: (_b, ctx, db) => push(ctx, { operation: "CLOSE", effect: "read", resource: db }),
  CreateStmt: ddlWrite("CREATE TABLE"),
  IndexStmt: ddlWrite("CREATE INDEX"),
  ViewStmt: (body, ctx, db) => ddlWrite("CREATE VIEW")({ ...body, relation: body["view"] }, ctx, db),
  RuleStmt: ddlWrite("CREATE RULE"),
  CreateTrigStmt: ddlWrite("CREATE TRIGGER"),
  CreateSeqStmt: (body, ctx, db) => ddlWrite("CREATE SEQUENCE")({ ...body, relation: body["sequence"] }, ctx, db),
  CreateTableAsStmt: (body, ctx, db) => {
    const into = isObject(body["into"]) ? body["into"]["rel"] : undefined;
    const operation = body["objtype"] === "OBJECT_MATVIEW" ? "CREATE MATERIALIZED VIEW" : "CREATE TABLE AS";
    ddlWrite(operation)({ ...body, relation: into, into: undefined }, ctx, db);
  },
  CreatedbStmt: (body, ctx) => push(ctx, { operation: "CREATE DATABASE", effect: "write", resource: str(body["dbname"]) ?? "-", resourceKind: "database" }),
  DiscardStmt: (_b, ctx, db) => push(ctx, { operation: "DISCARD", effect: "write", resource: db }),
  NotifyStmt: (_b, ctx, db) => push(ctx, { operation: "NOTIFY", effect: "write", resource: db }),
  CheckPointStmt: (_b, ctx, db) => push(ctx, { operation: "CHECKPOINT", effect: "write", resource: db }),
  AlterRoleSetStmt: alterSet("AlterRoleSetStmt"),
  AlterDatabaseSetStmt: alterSet("AlterDatabaseSetStmt"),
  AlterSystemStmt: alterSet("AlterSystemStmt"),
};

/**
 * `ALTER ROLE|DATABASE … SET x = …` and `ALTER SYSTEM SET x = …`: a schema or configuration
 * change (a write), and a setting judged irreversible when `SET` (a search_path before
 * pg_catalog, standard_conforming_strings, a command or a library the server runs) is judged so
 * here too, since every later session of that role, database or server gets it (an ordinary role
 * may `ALTER ROLE CURRENT_USER SET standard_conforming_strings = off`, and the next request's
 * literals are then read another way than Bulkhead parses them).
 */
function alterSet(kind: string): Handler {
  return (body, ctx, db) => {
    ddlWrite(kindWords(kind))(body, ctx, db);
    const set = body["setstmt"];
    if (!isObject(set)) return;
    const name = (str(set["name"]) ?? "").toLowerCase();
    if (name === "search_path" || name === "client_encoding" || irreversibleSetting(name) !== null) variableSet(set, ctx, db);
  };
}

/** Kinds not in the table whose name says they define or change schema objects: writes. */
export function genericHandler(kind: string): Handler | null {
  if (/^Drop/.test(kind)) return (_body, ctx, db) => push(ctx, { operation: kindWords(kind), effect: "irreversible", resource: db });
  if (/^(Create|Alter|Define|Rename|Comment|SecLabel|Reassign|Import|RefreshMatView|Cluster|Reindex|CompositeType)/.test(kind)) {
    return ddlWrite(kindWords(kind));
  }
  return null;
}

/** Statements nested in another (`EXPLAIN ANALYZE EXECUTE p`, `CREATE TABLE x AS EXECUTE p`). */
setNestedStatementHandler((kind, body, ctx) => {
  const handler = Object.hasOwn(STATEMENTS, kind) ? STATEMENTS[kind] : genericHandler(kind);
  if (handler) return handler(body, ctx, ctx.database);
  push(ctx, { operation: kindWords(kind), effect: "irreversible", resource: ctx.database, note: `statement kind ${kind} is not classified` });
});
