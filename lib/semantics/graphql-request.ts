/**
 * Extracting GraphQL payloads from an HTTP request in every encoding servers accept:
 * GET query parameters, JSON (single or batched array), `application/graphql`, and
 * `application/x-www-form-urlencoded`. Where servers disagree about precedence (a POST that
 * also carries `?query=`), the request is ambiguous and rejected.
 */
import { formNames, isJsonMediaType, parseFormStrict, parseJsonText, readAsForm, readTextBody } from "@/lib/semantics/body";
import { parseStrictJson, isJsonObject, type JsonValue } from "@/lib/semantics/json";
import { reject, type CanonicalRequest, type Rejection } from "@/lib/semantics/types";
import { readField, variantRejection } from "@/lib/semantics/when";

export interface GraphqlPayload {
  query: string | null;
  operationName: string | null;
  variables: Record<string, unknown>;
  /** `extensions.persistedQuery.sha256Hash` (lower-case). */
  persistedHash: string | null;
  /** Other persisted-document identifiers (`documentId`, `id`, `doc_id`, `queryId`). */
  documentId: string | null;
}

export type PayloadResult = { ok: true; payloads: GraphqlPayload[]; preflight?: boolean } | Rejection;

const GRAPHQL_PARAMS = ["query", "operationName", "variables", "extensions", "documentId", "id", "doc_id", "queryId"];
const DOCUMENT_ID_KEYS = ["documentId", "doc_id", "queryId", "id"];
export const MAX_BATCH = 50;

function parseJsonParam(name: string, value: unknown): { ok: true; value: unknown } | Rejection {
  if (typeof value !== "string") return { ok: true, value };
  if (value === "") return { ok: true, value: null };
  try {
    return { ok: true, value: parseStrictJson(value) };
  } catch {
    return reject("graphql_invalid_request", `"${name}" is not valid JSON`);
  }
}

/**
 * The GraphQL parameters of a request object, read exactly: a case variant (`Query`,
 * `OperationName`) is refused, since servers that match keys case-insensitively would use it.
 */
function readParams(raw: Record<string, unknown>): { ok: true; params: Record<string, unknown> } | Rejection {
  const params: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const key of GRAPHQL_PARAMS) {
    const found = readField(raw, key);
    if (!found.ok) return found;
    if (found.value !== undefined) params[key] = found.value;
  }
  return { ok: true, params };
}

/** Normalises one `{query, operationName, variables, extensions}` object. */
function toPayload(input: Record<string, unknown>): { ok: true; payload: GraphqlPayload } | Rejection {
  const read = readParams(input);
  if (!read.ok) return read;
  const raw = read.params;
  const query = raw["query"];
  if (query !== undefined && query !== null && typeof query !== "string") {
    return reject("graphql_invalid_request", '"query" must be a string');
  }
  const operationName = raw["operationName"];
  if (operationName !== undefined && operationName !== null && typeof operationName !== "string") {
    return reject("graphql_invalid_request", '"operationName" must be a string');
  }
  const variables = parseJsonParam("variables", raw["variables"]);
  if (!variables.ok) return variables;
  if (variables.value !== undefined && variables.value !== null && !isJsonObject(variables.value)) {
    return reject("graphql_invalid_request", '"variables" must be an object');
  }
  const extensions = parseJsonParam("extensions", raw["extensions"]);
  if (!extensions.ok) return extensions;
  let persistedHash: string | null = null;
  if (isJsonObject(extensions.value)) {
    const found = readField(extensions.value, "persistedQuery");
    if (!found.ok) return found;
    const pq = found.value;
    if (pq !== undefined) {
      const sha = isJsonObject(pq) ? readField(pq, "sha256Hash") : { ok: true as const, value: undefined };
      if (!sha.ok) return sha;
      const hash = sha.value;
      if (typeof hash !== "string") return reject("graphql_invalid_request", "persistedQuery without a sha256Hash");
      persistedHash = hash.toLowerCase();
    }
  } else if (extensions.value !== undefined && extensions.value !== null) {
    return reject("graphql_invalid_request", '"extensions" must be an object');
  }
  let documentId: string | null = null;
  for (const key of DOCUMENT_ID_KEYS) {
    const v = raw[key];
    if (v === undefined || v === null) continue;
    if (typeof v !== "string" && typeof v !== "number") return reject("graphql_invalid_request", `"${key}" must be a string`);
    if (documentId !== null) return reject("graphql_ambiguous_request", "more than one persisted document identifier");
    documentId = String(v);
  }
  return {
    ok: true,
    payload: {
      query: typeof query === "string" && query.trim() !== "" ? query : null,
      operationName: typeof operationName === "string" ? operationName : null,
      variables: (variables.value ?? {}) as Record<string, unknown>,
      persistedHash,
      documentId,
    },
  };
}

function fromFields(fields: Map<string, string>): { ok: true; payload: GraphqlPayload } | Rejection {
  const raw: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const [key, value] of fields) {
    const known = GRAPHQL_PARAMS.find((p) => p.toLowerCase() === key.toLowerCase());
    // ASP.NET and others read query parameters case-insensitively: `?Query=` is `?query=` there.
    if (known !== undefined && known !== key) return variantRejection(known, key);
    if (known !== undefined) raw[key] = value;
  }
  return toPayload(raw);
}

function fromJson(value: JsonValue): PayloadResult {
  const items = Array.isArray(value) ? value : [value];
  if (Array.isArray(value) && value.length === 0) return reject("graphql_invalid_request", "empty batch");
  if (items.length > MAX_BATCH) return reject("graphql_batch_too_large", `batch of more than ${MAX_BATCH} operations`);
  const payloads: GraphqlPayload[] = [];
  for (const item of items) {
    if (!isJsonObject(item)) return reject("graphql_invalid_request", "each GraphQL request must be a JSON object");
    const p = toPayload(item);
    if (!p.ok) return p;
    payloads.push(p.payload);
  }
  return { ok: true, payloads };
}

const LOWER_PARAMS = GRAPHQL_PARAMS.map((p) => p.toLowerCase());

/**
 * A GraphQL parameter hidden behind a `;` in the query string (`?query={me}&a=1;query=mutation…`)
 * or in a form body: Rack before 3, Django before 3.2 (query string and form body alike) and
 * Python's parse_qs before 3.9.2 also split pairs at `;`, so there the request carries a second
 * `query` (the last one wins in Rack and in Django's QueryDict) that a `&`-only reading never
 * sees. A client that meant a literal `;` in a value would have escaped it (`%3B`).
 */
function hiddenBehindSemicolon(query: string): string | null {
  for (const pair of query.split("&")) {
    for (const piece of pair.split(";").slice(1)) {
      const eq = piece.indexOf("=");
      let name = eq < 0 ? piece : piece.slice(0, eq);
      try {
        name = decodeURIComponent(name.replace(/\+/g, " "));
      } catch {
        // An undecodable name is no GraphQL parameter's.
      }
      if (LOWER_PARAMS.includes(name.trim().toLowerCase())) return name;
    }
  }
  return null;
}

export function extractGraphqlPayloads(req: CanonicalRequest): PayloadResult {
  const query = parseFormStrict(req.query);
  if (!query.ok) return query;
  const hidden = hiddenBehindSemicolon(req.query);
  if (hidden !== null) {
    return reject("graphql_ambiguous_request", `GraphQL parameter "${hidden.slice(0, 40)}" after a ";" in the query string: some servers split parameters at ";", others do not`);
  }
  const urlHasGraphql = [...query.fields.keys()].some((k) => LOWER_PARAMS.includes(k.toLowerCase()));

  // An OPTIONS request is a CORS preflight, but with GraphQL parameters in its URL it is judged
  // by them as a GET is (a browser's preflight of a GET query carries its URL; a server that runs
  // an OPTIONS, or a method override that turns it into a GET or POST, runs them).
  if (req.method === "GET" || req.method === "HEAD" || (req.method === "OPTIONS" && urlHasGraphql)) {
    if (req.body && req.body.length > 0) return reject("graphql_ambiguous_request", "GET request with a body");
    if (!urlHasGraphql) return reject("graphql_missing_query", "GET request without a GraphQL query");
    const p = fromFields(query.fields);
    return p.ok ? { ok: true, payloads: [p.payload] } : p;
  }
  if (req.method === "OPTIONS" && (!req.body || req.body.length === 0)) return { ok: true, payloads: [], preflight: true };
  // Some servers read the URL parameters of a POST, others the body: never guess which.
  if (urlHasGraphql) return reject("graphql_ambiguous_request", "GraphQL parameters in both the URL and the body");
  if (!req.body || req.body.length === 0) return reject("graphql_missing_query", "request has no GraphQL body");

  const text = readTextBody(req);
  if (!text.ok) return text;
  const type = text.media.type;
  if (type === "" || isJsonMediaType(type)) {
    // A POST labelled nothing is a form to Rack: `{"query":"{me{id}}","x":"&query=mutation{…}&"}`
    // runs the mutation there. Such a body naming a GraphQL parameter, read as a form, is refused.
    if (readAsForm(req.method, type)) {
      const named = formNames(text.text).find((n) => LOWER_PARAMS.includes(n.toLowerCase()));
      if (named !== undefined) {
        return reject("graphql_ambiguous_request", `the body has no Content-Type and, read as the form a server such as Rails reads it as, has the GraphQL parameter "${named.slice(0, 40)}": send it labelled application/json`);
      }
    }
    const json = parseJsonText(text.text);
    return json.ok ? fromJson(json.value) : json;
  }
  if (type === "application/graphql") {
    return { ok: true, payloads: [{ query: text.text, operationName: null, variables: {}, persistedHash: null, documentId: null }] };
  }
  if (type === "application/x-www-form-urlencoded") {
    // Django before 3.2 (graphene-django reads `request.POST`) and Python's parse_qs before 3.9.2
    // split a form body at `;` too, and QueryDict keeps the last `query`: a body
    // `query={me{id}}&a=1;query=mutation{…}` runs the mutation there, as the URL's twin would.
    const hiddenInBody = hiddenBehindSemicolon(text.text);
    if (hiddenInBody !== null) {
      return reject("graphql_ambiguous_request", `GraphQL parameter "${hiddenInBody.slice(0, 40)}" after a ";" in the form body: some servers split form fields at ";", others do not`);
    }
    const form = parseFormStrict(text.text);
    if (!form.ok) return form;
    const p = fromFields(form.fields);
    return p.ok ? { ok: true, payloads: [p.payload] } : p;
  }
  return reject("unsupported_content_type", `cannot inspect a GraphQL body of type "${type}"`);
}
