/**
 * GraphQL classification: every root field the server may execute becomes an action, under its
 * real field name (aliases are only labels), with resources taken from its arguments after
 * variable substitution. Batches are classified element by element, and every operation of a
 * document is judged, not only the selected one.
 *
 * Conservative by default: a mutation is at least a write whatever its fields
 * (`mutation { __typename }` still runs the mutation machinery and whatever resolvers hook it);
 * a subscription is a write unless the descriptor says otherwise; a mutation sent over GET is
 * refused whatever the policy (a server that runs it makes cross-site request forgery trivial).
 */
import type { GraphqlConfig, GraphqlField } from "@/lib/semantics/descriptors/schema";
import { analyseDocument, type AnalysedOperation, type RootField } from "@/lib/semantics/graphql-document";
import { extractGraphqlPayloads, type GraphqlPayload } from "@/lib/semantics/graphql-request";
import { isUnsafeInteger, unsafeIntegerRejection } from "@/lib/semantics/json";
import { asNumberReads } from "@/lib/semantics/path-fold";
import { lookupAll, matchWhen } from "@/lib/semantics/when";
import {
  effectRank,
  maxEffect,
  NO_RESOURCE,
  reject,
  type ActionDraft,
  type CanonicalRequest,
  type DraftResult,
  type Effect,
  type Rejection,
} from "@/lib/semantics/types";

/** Mutation names that announce destruction, anywhere in the name (over-matching is the safe side). */
const DESTRUCTIVE_NAME = /delete|destroy|remove|drop|purge|truncate|wipe|erase/i;

export function classifyGraphql(req: CanonicalRequest, config: GraphqlConfig): DraftResult {
  const extracted = extractGraphqlPayloads(req);
  if (!extracted.ok) return extracted;
  if (extracted.preflight) {
    return { ok: true, drafts: [{ operation: "OPTIONS", effect: "read", resource: NO_RESOURCE, keys: [], detail: { preflight: true } }] };
  }
  const drafts: ActionDraft[] = [];
  for (const [index, payload] of extracted.payloads.entries()) {
    const texts = documentsFor(payload, config);
    if (!Array.isArray(texts)) return texts;
    for (const text of texts) {
      const result = classifyDocument(text, payload.operationName, payload.variables, config, req.method);
      if (!result.ok) return result;
      for (const draft of result.drafts) {
        if (extracted.payloads.length > 1) draft.detail = { ...draft.detail, batchIndex: index };
        drafts.push(draft);
      }
    }
  }
  return { ok: true, drafts };
}

/** The document text(s) a payload may execute: its own query and/or a known persisted one. */
function documentsFor(payload: GraphqlPayload, config: GraphqlConfig): string[] | Rejection {
  const texts: string[] = [];
  if (payload.query !== null) texts.push(payload.query);
  for (const id of [payload.persistedHash, payload.documentId]) {
    if (id === null) continue;
    const known = Object.hasOwn(config.persistedQueries, id) ? config.persistedQueries[id] : undefined;
    if (known !== undefined) {
      if (!texts.includes(known)) texts.push(known);
    } else if (payload.query === null || id === payload.documentId) {
      // Without text we cannot know what runs; with a document id some servers ignore the text.
      return reject("graphql_unknown_persisted_query", `unknown persisted query "${id.slice(0, 80)}"`);
    }
  }
  if (texts.length === 0) return reject("graphql_missing_query", "GraphQL request carries no query");
  return texts;
}

/** Classifies one document text (exported for tests and the dashboard simulator). */
export function classifyDocument(
  text: string,
  operationName: string | null,
  variables: Record<string, unknown>,
  config: GraphqlConfig,
  method = "POST",
): DraftResult {
  const analysed = analyseDocument(text, operationName, variables, config.limits, declaredFields(config));
  if (!analysed.ok) return analysed;
  if ((method === "GET" || method === "HEAD") && analysed.operations.some((op) => op.type === "mutation")) {
    return reject("graphql_mutation_over_get", "a GraphQL mutation sent with GET is refused whatever the policy: a server that runs it makes cross-site request forgery trivial; send it with POST");
  }
  const drafts: ActionDraft[] = [];
  for (const operation of analysed.operations) {
    for (const field of operation.fields) {
      if (field.namespace !== undefined && !namespacedOperation(field, config)) continue;
      if (field.within !== undefined && !nestedOperation(field, operation.type, config)) continue;
      const found = fieldDrafts(field, operation, config);
      if (!Array.isArray(found)) return found;
      for (const draft of found) drafts.push(draft);
    }
  }
  return { ok: true, drafts };
}

/**
 * A field inside a mutation's namespace field (`mutation { admin { deleteProject(id: 1) } }`) is
 * judged as a mutation of its own when it looks like one: it takes arguments, its name announces
 * destruction, or the descriptor names it in `fields`. Other selections there (`logout { success
 * }`) are what the mutation returns, and the root field is judged in any case.
 */
function namespacedOperation(field: RootField, config: GraphqlConfig): boolean {
  return Object.keys(field.args).length > 0 || DESTRUCTIVE_NAME.test(field.name) || config.fields.some((f) => f.name === field.name);
}

/**
 * A field deeper in the document than a namespace reaches (under a field that takes arguments,
 * `mutation { tenant(id: "t") { deleteProject(id: 1) } }`, or anywhere in a query or
 * subscription) is judged as an operation of its own when the descriptor names it in `fields`
 * (a field declared irreversible acts wherever it is selected: `{ admin { nukeShop } }`) or, in
 * a mutation, when its name announces destruction or it names a resource by an identifier
 * argument (a server that groups mutations under a scoped namespace runs it as one). What a
 * mutation returns rarely does either (`createProduct(…) { product { reviews(first: 5) } }`
 * stays one action); where it does, it is judged too, the safe side.
 */
function nestedOperation(field: RootField, type: AnalysedOperation["type"], config: GraphqlConfig): boolean {
  if (declaredFields(config).has(field.name)) return true;
  if (type !== "mutation") return false;
  if (DESTRUCTIVE_NAME.test(field.name)) return true;
  const named = resourceArgNames(config);
  return namesIdentifier(field.args, named, 0);
}

/** Whether an input object in these arguments carries an identifier-shaped key, at any depth (bounded). */
function namesIdentifier(value: unknown, named: ReadonlySet<string>, depth: number): boolean {
  if (typeof value !== "object" || value === null || depth > MAX_ARGUMENT_DEPTH) return depth > MAX_ARGUMENT_DEPTH;
  if (Array.isArray(value)) return value.some((item) => namesIdentifier(item, named, depth + 1));
  for (const [key, inner] of Object.entries(value)) {
    if (ID_KEY.test(key) || named.has(key.toLowerCase())) return true;
    if (namesIdentifier(inner, named, depth + 1)) return true;
  }
  return false;
}

/**
 * The actions of one root field: one per resource it names. A list argument names each of its
 * elements (`volumeIds: ["vol_stg", "vol_prod"]`, `input: [{id: "a"}, {id: "b"}]`), and the
 * server acts on every one, so each is judged: taking the first alone let a field allowed on
 * `vol_stg` delete `vol_prod` beside it.
 */
function fieldDrafts(field: RootField, operation: AnalysedOperation, config: GraphqlConfig): ActionDraft[] | Rejection {
  let override: GraphqlField | undefined;
  // A field whose condition is met only as some servers read the value: one reading; the fields
  // after it (or the default) the other. The stricter is judged (rest.ts does the same).
  let loose: GraphqlField | undefined;
  for (const candidate of config.fields) {
    if (candidate.name !== field.name) continue;
    const when = matchWhen(candidate.when, field.args);
    if (!when.ok) return when;
    if (when.match && !when.exact) {
      loose ??= candidate;
      continue;
    }
    if (when.match) {
      override = candidate;
      break;
    }
  }
  if (loose && effectRank(fieldEffect(field.name, operation.type, loose, config)) >= effectRank(fieldEffect(field.name, operation.type, override, config))) override = loose;
  const effect = fieldEffect(field.name, operation.type, override, config);
  const found = resourceOf(field, override, config);
  if ("ok" in found) return found;
  const { resources, kind, keys } = found;
  const detail: Record<string, unknown> = { operationType: operation.type, arguments: field.args };
  if (operation.name !== null) detail["operationName"] = operation.name;
  if (!operation.selected) {
    detail["selected"] = false;
    detail["note"] = "in an operation the request does not select: a server that ignores operationName would run it";
  }
  if (field.alias !== null && field.alias !== field.name) detail["alias"] = field.alias;
  if (field.namespace !== undefined) {
    detail["namespace"] = field.namespace;
    const note = `selected inside ${field.namespace}, a root field without arguments: servers that group mutations under a namespace run it as one`;
    detail["note"] = typeof detail["note"] === "string" ? `${detail["note"]}; ${note}` : note;
  }
  if (field.within !== undefined) {
    detail["within"] = field.within;
    const note = `selected inside ${field.within}: judged as an operation of its own, as a server that nests operations there may run it`;
    detail["note"] = typeof detail["note"] === "string" ? `${detail["note"]}; ${note}` : note;
  }
  if (kind !== null) detail["resourceKind"] = kind;
  if (resources.length === 0) return [{ operation: field.name, effect, resource: NO_RESOURCE, keys, detail }];
  if (resources.length === 1) return [{ operation: field.name, effect, resource: resources[0] as string, keys, detail }];
  // Each action is looked up by its own resource plus the field's other identifiers, and only
  // the first carries the arguments: a list of n ids costs n actions, not n times n.
  const named = new Set(resources);
  const others = keys.filter((k) => !named.has(k));
  return resources.map((resource, index) => ({
    operation: field.name,
    effect,
    resource,
    keys: [resource, ...others],
    detail: index === 0 ? { ...detail, resourceIndex: 0 } : { ...withoutArguments(detail), resourceIndex: index },
  }));
}

function withoutArguments(detail: Record<string, unknown>): Record<string, unknown> {
  const { arguments: _omitted, ...rest } = detail;
  return rest;
}

function fieldEffect(name: string, type: AnalysedOperation["type"], override: GraphqlField | undefined, config: GraphqlConfig): Effect {
  if (type === "mutation") {
    const named: Effect = override ? override.effect : DESTRUCTIVE_NAME.test(name) ? "destructive" : "write";
    return maxEffect(named, "write");
  }
  if (override) return override.effect;
  if (type === "subscription") return config.subscriptionEffect;
  return "read";
}

const VERBS = new Set(["get", "list", "create", "update", "upsert", "set", "add", "delete", "remove", "destroy", "drop", "purge", "archive", "restore", "reset", "rename", "transfer", "deploy", "redeploy", "restart", "stop", "cancel"]);

/** "volumeId" → "volume"; "id" → the noun of the field ("environmentDelete", "deleteProduct" → "environment", "product"). */
function kindOf(argName: string, fieldName: string): string {
  const last = argName.split(".").pop() ?? argName;
  if (!/^id$/i.test(last)) return last.replace(/_?ids?$/i, "") || "resource";
  const words = fieldName.split(/_|(?=[A-Z])/).map((w) => w.toLowerCase()).filter((w) => w !== "");
  return words.find((w) => !VERBS.has(w)) ?? "resource";
}

/**
 * How deep an argument's input objects and lists are read for identifiers. A JSON variable nests
 * at most 128 deep (json.ts), a literal in the document further: beyond this the request is
 * refused (`graphql_too_deep`), never read partly, so nesting cannot hide an identifier.
 */
const MAX_ARGUMENT_DEPTH = 160;

const tooDeep = (field: string): Rejection =>
  reject("graphql_too_deep", `an argument of ${field} nests input objects or lists more than ${MAX_ARGUMENT_DEPTH} deep; the identifiers in it cannot all be read`);

/** The identifiers a value names: a string or number, or every one in a list (nested lists too). */
function idValues(value: unknown, unsafe: string[], path: string, depth = 0): string[] | null {
  if (typeof value === "string" && value !== "") {
    // "0042" and "+42" are 42 to a resolver that parses the ID as a number: both are judged.
    const number = asNumberReads(value);
    return number === value ? [value] : [value, number];
  }
  if (isUnsafeInteger(value)) unsafe.push(path);
  if (typeof value === "number") return [String(value)];
  if (Array.isArray(value)) {
    if (depth >= MAX_ARGUMENT_DEPTH) return null;
    const out = new Set<string>();
    for (const v of value) {
      const inner = idValues(v, unsafe, path, depth + 1);
      if (inner === null) return null;
      for (const id of inner) out.add(id);
    }
    return [...out];
  }
  return [];
}

/**
 * An identifier-looking argument name: `id`, `ID`, `…Id`, `…ID` (Go's `userID`, `repoIDs`),
 * `…_id`, `…_ID`, with an `s` for a list. Case-insensitive only at a word boundary, so `valid` and
 * `paid` are not identifiers.
 */
const ID_KEY = /^[iI][dD][sS]?$|(?:Id|ID)[sS]?$|_[iI][dD][sS]?$/;

/**
 * Every identifier-looking argument (`ID_KEY`, or an argument the descriptor names in
 * `resourceArgs`, compared without case: `owner`, `name`), at any depth up to
 * MAX_ARGUMENT_DEPTH (deeper is a rejection). The elements of a list of input objects are read
 * under the list's path (`input: [{id: "a"}, {id: "b"}]` gives `input.id` twice): the server acts
 * on each. False when the value nests too deep.
 */
function collectIds(value: unknown, depth: number, out: Array<{ path: string; value: string }>, prefix: string, unsafe: string[], named: ReadonlySet<string>): boolean {
  if (typeof value !== "object" || value === null) return true;
  if (depth > MAX_ARGUMENT_DEPTH) return false;
  if (Array.isArray(value)) {
    for (const item of value) if (!collectIds(item, depth + 1, out, prefix, unsafe, named)) return false;
    return true;
  }
  for (const [key, v] of Object.entries(value)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (ID_KEY.test(key) || named.has(key.toLowerCase())) {
      const ids = idValues(v, unsafe, path, depth);
      if (ids === null) return false;
      for (const id of ids) out.push({ path, value: id });
    }
    if (!collectIds(v, depth + 1, out, path, unsafe, named)) return false;
  }
  return true;
}

// Per descriptor: the names its `fields` declare an effect for.
const declaredNames = new WeakMap<readonly GraphqlField[], ReadonlySet<string>>();
function declaredFields(config: GraphqlConfig): ReadonlySet<string> {
  let names = declaredNames.get(config.fields);
  if (!names) {
    names = new Set(config.fields.map((f) => f.name));
    declaredNames.set(config.fields, names);
  }
  return names;
}

// Per descriptor: the last part of each resourceArgs name, lower-cased, and its plural.
const namedArgs = new WeakMap<readonly string[], ReadonlySet<string>>();
function resourceArgNames(config: GraphqlConfig): ReadonlySet<string> {
  let names = namedArgs.get(config.resourceArgs);
  if (!names) {
    names = new Set(config.resourceArgs.flatMap((name) => {
      const last = (name.split(".").pop() ?? name).toLowerCase();
      return [last, `${last}s`];
    }));
    namedArgs.set(config.resourceArgs, names);
  }
  return names;
}

function resourceOf(
  field: RootField,
  override: GraphqlField | undefined,
  config: GraphqlConfig,
): { resources: string[]; kind: string | null; keys: string[] } | Rejection {
  const found: Array<{ path: string; value: string }> = [];
  const unsafe: string[] = [];
  if (!collectIds(field.args, 0, found, "", unsafe, resourceArgNames(config))) return tooDeep(field.name);
  const keys = [...new Set(found.map((f) => f.value))];
  if (override?.resourceArg) {
    const arg = lookupAll(field.args, override.resourceArg);
    if (!arg.ok) return arg;
    const read = arg.values.map((v) => idValues(v, unsafe, override.resourceArg as string));
    if (read.some((v) => v === null)) return tooDeep(field.name);
    const values = [...new Set(read.flatMap((v) => v ?? []))];
    if (unsafe.length > 0) return unsafeIntegerRejection(`argument "${unsafe[0]}" of ${field.name}`);
    if (values.length > 0) {
      return { resources: values, kind: override.resourceKind ?? kindOf(override.resourceArg, field.name), keys: [...new Set([...values, ...keys])] };
    }
  }
  if (unsafe.length > 0) return unsafeIntegerRejection(`argument "${unsafe[0]}" of ${field.name}`);
  // Names compared without case: Go's `repositoryID` is the descriptor's `repositoryId`; and a
  // list under the plural (`ids`, `productIds`) names each of its elements.
  for (const name of config.resourceArgs) {
    const lower = name.toLowerCase();
    const plural = `${lower}s`;
    const is = (path: string) => path === lower || path === plural || path.endsWith(`.${lower}`) || path.endsWith(`.${plural}`);
    const hit = found.find((f) => f.path.toLowerCase() === lower) ?? found.find((f) => is(f.path.toLowerCase()));
    if (hit) {
      const resources = [...new Set(found.filter((f) => f.path === hit.path).map((f) => f.value))];
      return { resources, kind: override?.resourceKind ?? kindOf(name, field.name), keys };
    }
  }
  return { resources: [], kind: null, keys };
}
