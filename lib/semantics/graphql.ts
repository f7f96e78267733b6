/**
 * GraphQL classification: every root field the server will execute becomes an action, under its
 * real field name (aliases are only labels), with resources taken from its arguments after
 * variable substitution. Batches are classified element by element.
 */
import type { GraphqlConfig, GraphqlField } from "@/lib/semantics/descriptors/schema";
import { selectOperation, type OperationType, type RootField } from "@/lib/semantics/graphql-document";
import { extractGraphqlPayloads, type GraphqlPayload } from "@/lib/semantics/graphql-request";
import { getPath, matchWhen } from "@/lib/semantics/when";
import {
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
const INTROSPECTION = new Set(["__typename", "__schema", "__type"]);

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
      const result = classifyDocument(text, payload.operationName, payload.variables, config);
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
): DraftResult {
  const selected = selectOperation(text, operationName, variables);
  if (!selected.ok) return selected;
  const { operation } = selected;
  const drafts = operation.fields.map((field) => fieldDraft(field, operation.type, operation.name, config));
  return { ok: true, drafts };
}

function fieldDraft(field: RootField, type: OperationType, operationName: string | null, config: GraphqlConfig): ActionDraft {
  const override = config.fields.find((f) => f.name === field.name && matchWhen(f.when, field.args));
  const effect = fieldEffect(field.name, type, override, config);
  const { resource, kind, keys } = resourceOf(field, override, config);
  const detail: Record<string, unknown> = { operationType: type, arguments: field.args };
  if (operationName !== null) detail["operationName"] = operationName;
  if (field.alias !== null && field.alias !== field.name) detail["alias"] = field.alias;
  if (kind !== null) detail["resourceKind"] = kind;
  return { operation: field.name, effect, resource, keys, detail };
}

function fieldEffect(name: string, type: OperationType, override: GraphqlField | undefined, config: GraphqlConfig): Effect {
  if (override) return override.effect;
  if (INTROSPECTION.has(name)) return "read";
  if (type === "query") return "read";
  if (type === "subscription") return config.subscriptionEffect;
  return DESTRUCTIVE_NAME.test(name) ? "destructive" : "write";
}

const VERBS = new Set(["get", "list", "create", "update", "upsert", "set", "add", "delete", "remove", "destroy", "drop", "purge", "archive", "restore", "reset", "rename", "transfer", "deploy", "redeploy", "restart", "stop", "cancel"]);

/** "volumeId" → "volume"; "id" → the noun of the field ("environmentDelete", "deleteProduct" → "environment", "product"). */
function kindOf(argName: string, fieldName: string): string {
  const last = argName.split(".").pop() ?? argName;
  if (!/^id$/i.test(last)) return last.replace(/_?ids?$/i, "") || "resource";
  const words = fieldName.split(/_|(?=[A-Z])/).map((w) => w.toLowerCase()).filter((w) => w !== "");
  return words.find((w) => !VERBS.has(w)) ?? "resource";
}

function idValues(value: unknown): string[] {
  if (typeof value === "string" && value !== "") return [value];
  if (typeof value === "number") return [String(value)];
  if (Array.isArray(value)) return value.flatMap((v) => (typeof v === "string" || typeof v === "number" ? [String(v)] : []));
  return [];
}

/** Every identifier-looking argument ("id", "…Id", "…Ids", "…_id"), at any depth up to 4. */
function collectIds(value: unknown, depth: number, out: Array<{ path: string; value: string }>, prefix: string): void {
  if (depth > 4 || typeof value !== "object" || value === null || Array.isArray(value)) return;
  for (const [key, v] of Object.entries(value)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (/^id$|Ids?$|_ids?$/.test(key)) for (const id of idValues(v)) out.push({ path, value: id });
    collectIds(v, depth + 1, out, path);
  }
}

function resourceOf(
  field: RootField,
  override: GraphqlField | undefined,
  config: GraphqlConfig,
): { resource: string; kind: string | null; keys: string[] } {
  const found: Array<{ path: string; value: string }> = [];
  collectIds(field.args, 0, found, "");
  const keys = [...new Set(found.map((f) => f.value))];
  if (override?.resourceArg) {
    const v = idValues(getPath(field.args, override.resourceArg))[0];
    if (v !== undefined) return { resource: v, kind: override.resourceKind ?? kindOf(override.resourceArg, field.name), keys: [v, ...keys] };
  }
  for (const name of config.resourceArgs) {
    const hit = found.find((f) => f.path === name) ?? found.find((f) => f.path.endsWith(`.${name}`));
    if (hit) return { resource: hit.value, kind: override?.resourceKind ?? kindOf(name, field.name), keys };
  }
  return { resource: NO_RESOURCE, kind: null, keys };
}
