/**
 * SQL over HTTP: the statement comes from a configured JSON field (or the whole body), the
 * database name from another field or the descriptor. Each statement's actions are kept.
 *
 * The URL must not carry the statement or the database as well: servers that accept the SQL as a
 * URL parameter read it there (ClickHouse runs `?query=` and takes the body as its data or the
 * query's continuation, `?database=` picks the database; others merge URL and body parameters,
 * and which one wins differs), so a request that names them in both places is refused rather
 * than judged on the body alone.
 *
 * Neon takes the database from the `Neon-Connection-String` header (sql-connection-string.ts):
 * when a request carries it, every statement is judged for that database (and endpoint), and a
 * body that names another database is refused.
 */
import { formReading, parseJsonText, queryParameterNames, readAsForm, readTextBody } from "@/lib/semantics/body";
import type { SqlConfig } from "@/lib/semantics/descriptors/schema";
import { isJsonObject } from "@/lib/semantics/json";
import { classifySqlWithin, newSqlBudget, type SqlBudget } from "@/lib/semantics/sql";
import { connectionTarget, NEON_CONNECTION_STRING, type ConnectionTarget } from "@/lib/semantics/sql-connection-string";
import { lookupPath } from "@/lib/semantics/when";
import { reject, type ActionDraft, type CanonicalRequest, type DraftResult, type Rejection } from "@/lib/semantics/types";

const MAX_BATCH = 50;

/**
 * Keys that name a statement or a batch of statements on some SQL-over-HTTP server (Neon's
 * `query` and `queries`, `sql`, `statements`, `batch`, `stmt`, `commands`, InfluxQL's and many
 * query APIs' `q`, `command`…), compared trimmed and lower-cased.
 */
const STATEMENT_KEYS = new Set(["queries", "statements", "batch", "sql", "query", "q", "stmt", "statement", "command", "commands"]);
/** URL parameters that name the database on some server besides `database` (InfluxDB's `db`, libpq's `dbname`). */
const DATABASE_KEYS = ["database", "db", "dbname"];

function draftsFor(sql: string, database: string | undefined, batchIndex: number | null, config: SqlConfig, budget: SqlBudget, target: ConnectionTarget | null): ActionDraft[] | Rejection {
  const result = classifySqlWithin(sql, { database, readOnlyFunctions: config.readOnlyFunctions }, budget);
  if ("ok" in result) return result;
  return result.actions.map((a) => {
    const detail: Record<string, unknown> = { statement: a.statement };
    if (a.resourceKind) detail["resourceKind"] = a.resourceKind;
    if (a.searchPath) detail["searchPath"] = a.searchPath;
    if (a.note) detail["note"] = a.note;
    if (database) detail["database"] = database;
    if (target) {
      detail["databaseUser"] = target.user;
      detail["databaseHost"] = target.host;
    }
    if (batchIndex !== null) detail["batchIndex"] = batchIndex;
    return {
      operation: a.operation,
      effect: a.effect,
      resource: a.resource,
      detail,
      // A qualified table is also looked up by its own name: an inventory entry for `secrets`
      // must not be dodged by writing `public.secrets`.
      // The endpoint too: on Neon it picks the branch, which an inventory may map to an environment.
      keys: [a.resource, ...(a.resourceKind === "table" && a.resource.includes(".") ? [a.resource.split(".").pop() as string] : []), ...(database ? [database] : []), ...(target ? [target.host] : [])],
    };
  });
}

/**
 * The URL parameter that names the statement or the database, if any: the descriptor's
 * `queryField`, `batchField` and `databaseField` (whole, or their first or last dotted key),
 * plus `database` (`db`, `dbname`) and every name of `STATEMENT_KEYS` (`query`, `q`, `sql`, `queries`…), as servers
 * read parameter names (`queryParameterNames`: any case, escapes, `[...]` suffixes, pairs split
 * at `;`).
 */
function sqlParameterNames(config: SqlConfig): Set<string> {
  const names = new Set([...DATABASE_KEYS, ...STATEMENT_KEYS]);
  for (const field of [config.queryField, config.batchField, config.databaseField]) {
    if (field === undefined) continue;
    const keys = field.toLowerCase().split(".");
    names.add(field.toLowerCase());
    names.add(keys[0] as string);
    names.add(keys[keys.length - 1] as string);
  }
  return names;
}

function sqlParameterInUrl(query: string, config: SqlConfig): string | null {
  const names = sqlParameterNames(config);
  for (const { name, base } of queryParameterNames(query)) {
    const inner = /\[([^\]]*)\]\s*$/.exec(name)?.[1]?.trim();
    if (names.has(name) || names.has(base) || (inner !== undefined && names.has(inner))) return name;
  }
  return null;
}

export function classifySqlHttp(req: CanonicalRequest, config: SqlConfig): DraftResult {
  const inUrl = sqlParameterInUrl(req.query, config);
  if (inUrl !== null) {
    return reject(
      "sql_ambiguous_request",
      `URL parameter "${inUrl.slice(0, 40)}" names the SQL statement or the database, which this service reads from the body: servers that accept it in the URL would run or target what the URL says, so it is refused; send it in the body only`,
    );
  }
  const target = connectionTarget(req.headers);
  if (target !== null && "ok" in target) return target;
  if (!req.body || req.body.length === 0) return reject("sql_missing_query", "SQL request has no body");
  const text = readTextBody(req);
  if (!text.ok) return text;
  // One budget for the whole request, batch included (SQL_LIMITS).
  const budget = newSqlBudget();
  // The descriptor's fixed database is what the request runs in when it names none.
  const fallback = target?.database ?? config.database;
  if (config.bodyFormat === "text") {
    const drafts = draftsFor(text.text, fallback, null, config, budget, target);
    return Array.isArray(drafts) ? { ok: true, drafts } : drafts;
  }

  const json = parseJsonText(text.text);
  if (!json.ok) return json;
  // Labelled a form, the JSON text is a form to servers that parse by Content-Type:
  // `{"query":"SELECT 1","x":"&query=DROP TABLE t&"}` is the form field query=DROP TABLE t there.
  // So it is for a POST labelled nothing, which Rack parses as a form.
  if (readAsForm(req.method, text.media.type)) {
    const form = formReading(text.text);
    if (!form.ok) return form;
    const names = sqlParameterNames(config);
    const named = Object.keys(form.value).find((key) => names.has(key.trim().toLowerCase()));
    if (named !== undefined) {
      return reject(
        "sql_ambiguous_request",
        `the body is labelled a form and, read as one, has the field "${named.slice(0, 40)}": servers that parse it as a form would run or target what that field says, so it is refused; send JSON as application/json`,
      );
    }
  }
  const items = Array.isArray(json.value) ? json.value : [json.value];
  if (items.length === 0 || items.length > MAX_BATCH) return reject("sql_invalid_request", "SQL batch must hold 1 to 50 requests");
  const batched = Array.isArray(json.value);
  const drafts: ActionDraft[] = [];
  let statements = 0;
  for (const [index, item] of items.entries()) {
    if (!isJsonObject(item)) return reject("sql_invalid_request", "SQL request must be a JSON object");
    const database = databaseOf(item, config, fallback, target);
    if (typeof database !== "string" && database !== undefined) return database;
    const query = lookupPath(item, config.queryField);
    if (!query.ok) return query;
    const list = config.batchField ? lookupPath(item, config.batchField) : ({ ok: true, value: undefined } as const);
    if (!list.ok) return list;
    if (query.value === undefined && list.value === undefined) {
      return reject("sql_missing_query", `SQL request has no string field "${config.queryField}"${config.batchField ? ` nor a list "${config.batchField}"` : ""}`);
    }
    const stray = strayStatementKey(item, config, true);
    if (stray) return stray;
    // Both may be present: a server may run either (or both), so every statement is judged.
    if (query.value !== undefined) {
      if (typeof query.value !== "string") return reject("sql_missing_query", `SQL request has no string field "${config.queryField}"`);
      if (++statements > MAX_BATCH) return reject("sql_invalid_request", "SQL batch must hold 1 to 50 requests");
      const found = draftsFor(query.value, database, batched ? index : null, config, budget, target);
      if (!Array.isArray(found)) return found;
      for (const draft of found) drafts.push(draft);
    }
    if (list.value !== undefined) {
      const field = config.batchField as string;
      if (!Array.isArray(list.value) || list.value.length === 0) return reject("sql_invalid_request", `"${field}" must be a list of 1 to 50 statements`);
      for (const [inner, element] of list.value.entries()) {
        if (!isJsonObject(element)) return reject("sql_invalid_request", `each element of "${field}" must be a JSON object`);
        const sql = lookupPath(element, config.queryField);
        if (!sql.ok) return sql;
        if (typeof sql.value !== "string") return reject("sql_missing_query", `an element of "${field}" has no string field "${config.queryField}"`);
        const strayInside = strayStatementKey(element, config, false);
        if (strayInside) return strayInside;
        const elementDatabase = databaseOf(element, config, database, target);
        if (typeof elementDatabase !== "string" && elementDatabase !== undefined) return elementDatabase;
        if (++statements > MAX_BATCH) return reject("sql_invalid_request", "SQL batch must hold 1 to 50 requests");
        const found = draftsFor(sql.value, elementDatabase, batched ? index : inner, config, budget, target);
        if (!Array.isArray(found)) return found;
        for (const draft of found) drafts.push(draft);
      }
    }
  }
  return { ok: true, drafts };
}

/**
 * The database an object names in `databaseField`, else `fallback`. With a connection-string
 * header, that header says where the statements run: a body naming another database is refused,
 * as is one naming it in a spelling that differs in any way (a server may read either).
 */
function databaseOf(item: object, config: SqlConfig, fallback: string | undefined, target: ConnectionTarget | null): string | undefined | Rejection {
  if (!config.databaseField) return fallback;
  const field = lookupPath(item, config.databaseField);
  if (!field.ok) return field;
  const named = field.value;
  if (named !== undefined && named !== null && typeof named !== "string") {
    return reject("sql_invalid_request", `"${config.databaseField}" must be a string`);
  }
  if (typeof named !== "string" || named === "") return fallback;
  if (target && named !== target.database) {
    return reject(
      "sql_ambiguous_request",
      `"${config.databaseField}" names the database "${named.slice(0, 60)}" and the ${NEON_CONNECTION_STRING} header "${target.database.slice(0, 60)}": the server may run the statements in either, so the request is refused; name one database`,
    );
  }
  return named;
}


/**
 * A key beside the ones this service reads that names a statement or a batch
 * (`{"query": "SELECT 1", "queries": [{"query": "DROP TABLE users"}]}` on a service that reads
 * `query` only): the server may run what that key says instead of, or as well as, what Bulkhead
 * judged, so the request is refused. `top`: the request object (its batch field is read there);
 * otherwise an element of the batch.
 */
function strayStatementKey(item: object, config: SqlConfig, top: boolean): Rejection | null {
  const read = new Set<string>([config.queryField, ...(top && config.batchField ? [config.batchField] : []), ...(config.databaseField ? [config.databaseField] : [])].map((f) => f.split(".")[0] as string));
  for (const key of Object.keys(item)) {
    if (read.has(key) || !STATEMENT_KEYS.has(key.trim().toLowerCase())) continue;
    return reject(
      "sql_ambiguous_request",
      `the body has the field "${key.slice(0, 40)}", which names SQL statements on some servers, beside ${[...read].map((r) => `"${r}"`).join(", ")} that this service reads: a server may run what it says, so it is refused; ${config.batchField ? `send statements in "${config.queryField}" or "${config.batchField}"` : `send the statement in "${config.queryField}" only (a service that takes batches declares its batchField)`}`,
    );
  }
  return null;
}
