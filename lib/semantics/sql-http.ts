/**
 * SQL over HTTP: the statement comes from a configured JSON field (or the whole body), the
 * database name from another field or the descriptor. Each statement's actions are kept.
 *
 * The URL must not carry the statement or the database as well: servers that accept the SQL as a
 * URL parameter read it there (ClickHouse runs `?query=` and takes the body as its data or the
 * query's continuation, `?database=` picks the database; others merge URL and body parameters,
 * and which one wins differs), so a request that names them in both places is refused rather
 * than judged on the body alone.
 */
import { formReading, parseJsonText, queryParameterNames, readTextBody } from "@/lib/semantics/body";
import type { SqlConfig } from "@/lib/semantics/descriptors/schema";
import { isJsonObject } from "@/lib/semantics/json";
import { classifySqlWithin, newSqlBudget, type SqlBudget } from "@/lib/semantics/sql";
import { lookupPath } from "@/lib/semantics/when";
import { reject, type ActionDraft, type CanonicalRequest, type DraftResult, type Rejection } from "@/lib/semantics/types";

const MAX_BATCH = 50;

function draftsFor(sql: string, database: string | undefined, batchIndex: number | null, config: SqlConfig, budget: SqlBudget): ActionDraft[] | Rejection {
  const result = classifySqlWithin(sql, { database, readOnlyFunctions: config.readOnlyFunctions }, budget);
  if ("ok" in result) return result;
  return result.actions.map((a) => {
    const detail: Record<string, unknown> = { statement: a.statement };
    if (a.resourceKind) detail["resourceKind"] = a.resourceKind;
    if (a.note) detail["note"] = a.note;
    if (database) detail["database"] = database;
    if (batchIndex !== null) detail["batchIndex"] = batchIndex;
    return {
      operation: a.operation,
      effect: a.effect,
      resource: a.resource,
      detail,
      // A qualified table is also looked up by its own name: an inventory entry for `secrets`
      // must not be dodged by writing `public.secrets`.
      keys: [a.resource, ...(a.resourceKind === "table" && a.resource.includes(".") ? [a.resource.split(".").pop() as string] : []), ...(database ? [database] : [])],
    };
  });
}

/**
 * The URL parameter that names the statement or the database, if any: the descriptor's
 * `queryField` and `databaseField` (whole, or their first or last dotted key), plus `query`,
 * `sql` and `database`, as servers read parameter names (`queryParameterNames`: any case,
 * escapes, `[...]` suffixes, pairs split at `;`).
 */
function sqlParameterNames(config: SqlConfig): Set<string> {
  const names = new Set(["query", "sql", "database"]);
  for (const field of [config.queryField, config.databaseField]) {
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
  if (!req.body || req.body.length === 0) return reject("sql_missing_query", "SQL request has no body");
  const text = readTextBody(req);
  if (!text.ok) return text;
  // One budget for the whole request, batch included (SQL_LIMITS).
  const budget = newSqlBudget();
  if (config.bodyFormat === "text") {
    const drafts = draftsFor(text.text, config.database, null, config, budget);
    return Array.isArray(drafts) ? { ok: true, drafts } : drafts;
  }

  const json = parseJsonText(text.text);
  if (!json.ok) return json;
  // Labelled a form, the JSON text is a form to servers that parse by Content-Type:
  // `{"query":"SELECT 1","x":"&query=DROP TABLE t&"}` is the form field query=DROP TABLE t there.
  if (text.media.type === "application/x-www-form-urlencoded") {
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
  const drafts: ActionDraft[] = [];
  for (const [index, item] of items.entries()) {
    if (!isJsonObject(item)) return reject("sql_invalid_request", "SQL request must be a JSON object");
    const query = lookupPath(item, config.queryField);
    if (!query.ok) return query;
    const sql = query.value;
    if (typeof sql !== "string") return reject("sql_missing_query", `SQL request has no string field "${config.queryField}"`);
    let database = config.database;
    if (config.databaseField) {
      const field = lookupPath(item, config.databaseField);
      if (!field.ok) return field;
      const named = field.value;
      if (named !== undefined && named !== null && typeof named !== "string") {
        return reject("sql_invalid_request", `"${config.databaseField}" must be a string`);
      }
      if (typeof named === "string" && named !== "") database = named;
    }
    const found = draftsFor(sql, database, Array.isArray(json.value) ? index : null, config, budget);
    if (!Array.isArray(found)) return found;
    drafts.push(...found);
  }
  return { ok: true, drafts };
}
