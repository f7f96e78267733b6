/**
 * MCP over streamable HTTP: JSON-RPC 2.0 messages, single or batched. `tools/call` is the method
 * that acts on the world; its effect comes from the descriptor's tool list (unknown tools are
 * writes). Protocol plumbing (initialize, lists, reads, notifications, responses) is a read.
 *
 * Only what is unambiguous is classified. A tool name outside the MCP name grammar
 * (case-sensitive `[A-Za-z0-9_./-]`, 1 to 128 characters: no spaces, zero-width, fullwidth,
 * look-alike or combining characters) and a name that differs from a known tool only in case are
 * refused: a server that trims, folds or normalises names would run the known tool, while
 * Bulkhead would have judged an "unknown" one. A method that is not an MCP method is refused
 * unless the descriptor declares that the server accepts it (`mcp.methods`). Keys are read
 * exactly: `{"result": …, "Method": "tools/call"}` is refused, not taken for a response.
 */
import { isJsonMediaType, parseJsonText, readTextBody } from "@/lib/semantics/body";
import type { McpConfig } from "@/lib/semantics/descriptors/schema";
import { compileGlob } from "@/lib/semantics/glob";
import { isJsonObject, isUnsafeInteger, unsafeIntegerRejection, type JsonValue } from "@/lib/semantics/json";
import { looksLikeHierarchicalUri, normalizeResourceUri } from "@/lib/semantics/resource-uri";
import { asNumberReads } from "@/lib/semantics/path-fold";
import { lookupAll, readField as field } from "@/lib/semantics/when";
import { NO_RESOURCE, reject, type ActionDraft, type CanonicalRequest, type DraftResult, type Effect, type Rejection } from "@/lib/semantics/types";

/** Client-to-server methods of MCP (2025-11-25) and what each does. */
export const MCP_METHODS: Readonly<Record<string, Effect>> = {
  initialize: "read",
  ping: "read",
  "tools/list": "read",
  "tools/call": "write", // refined by the tool
  "resources/list": "read",
  "resources/templates/list": "read",
  "resources/read": "read",
  "resources/subscribe": "read",
  "resources/unsubscribe": "read",
  "prompts/list": "read",
  "prompts/get": "read",
  "completion/complete": "read",
  "logging/setLevel": "write",
  "tasks/get": "read",
  "tasks/list": "read",
  "tasks/result": "read",
  "tasks/cancel": "write",
  "notifications/initialized": "read",
  "notifications/cancelled": "read",
  "notifications/progress": "read",
  "notifications/roots/list_changed": "read",
  "notifications/tasks/status": "read",
};
const URI_METHODS = new Set(["resources/read", "resources/subscribe", "resources/unsubscribe"]);
const TOOL_NAME = /^[A-Za-z0-9_./-]{1,128}$/;
const MAX_BATCH = 50;

type Fields = Record<string, unknown>;

/** Descriptor tool patterns compiled once per descriptor object (exact and case-folded). */
const TOOL_MATCHERS = new WeakMap<object, { exact: (v: string) => boolean; folded: (v: string) => boolean }>();
function toolMatcher(tool: McpConfig["tools"][number]) {
  let m = TOOL_MATCHERS.get(tool);
  if (!m) TOOL_MATCHERS.set(tool, (m = { exact: compileGlob(tool.name), folded: compileGlob(tool.name.toLowerCase()) }));
  return m;
}

function describeCharacter(name: string): string {
  for (const ch of name) {
    if (!/[A-Za-z0-9_./-]/.test(ch)) return `U+${(ch.codePointAt(0) as number).toString(16).toUpperCase().padStart(4, "0")}`;
  }
  return "";
}

function checkToolName(name: string, config: McpConfig): Rejection | null {
  if (!TOOL_NAME.test(name)) {
    const bad = describeCharacter(name);
    const why = name.length === 0 || name.length > 128 ? `${name.length} characters long` : `contains ${bad}`;
    return reject("mcp_invalid_tool_name", `tool name ${JSON.stringify(name.slice(0, 140))} is outside the MCP tool name grammar ([A-Za-z0-9_./-], 1 to 128 characters): it ${why}`);
  }
  const lower = name.toLowerCase();
  for (const tool of config.tools) {
    const m = toolMatcher(tool);
    if (m.exact(name)) return null;
    if (m.folded(lower)) {
      return reject("mcp_tool_name_variant", `tool name ${JSON.stringify(name)} differs only in case from ${JSON.stringify(tool.name)}, which the service descriptor names: a server that matches names case-insensitively would run that tool`);
    }
  }
  return null;
}

function scalarResource(value: string | number): { ok: true; resource: string | null } | Rejection {
  if (typeof value === "number") return { ok: true, resource: String(value) };
  if (value === "") return { ok: true, resource: null };
  if (!looksLikeHierarchicalUri(value)) return { ok: true, resource: value };
  const uri = normalizeResourceUri(value);
  return uri.ok ? { ok: true, resource: uri.uri } : uri;
}

/**
 * The resources a tool's resource argument names. A string or number is one; a list names each
 * of its elements (a server that accepts `["vol_stg", "vol_prod"]`, or turns it into the string
 * `vol_stg,vol_prod`, acts on both), and each is judged. Any other value (an object, a boolean,
 * a list holding one) names something Bulkhead cannot read a resource from, while a server that
 * coerces it, or passes it to a query (`{"$ne": null}`), may act on any resource: refused.
 * Absent or null: no resource.
 */
function resourcesOf(value: unknown, arg: string): { ok: true; resources: string[] } | Rejection {
  if (value === undefined || value === null) return { ok: true, resources: [] };
  const items = Array.isArray(value) ? value : [value];
  const out = new Set<string>();
  for (const item of items) {
    if (typeof item !== "string" && typeof item !== "number") {
      return reject(
        "mcp_invalid_resource_argument",
        `resource argument "${arg}" is ${Array.isArray(value) ? "a list holding " : ""}${Array.isArray(item) ? "a list" : item === null ? "null" : typeof item === "object" ? "an object" : `a ${typeof item}`}: it must be a string, a number or a list of them, so that the resource it names can be judged`,
      );
    }
    if (isUnsafeInteger(item)) return unsafeIntegerRejection(`resource argument "${arg}"`);
    const found = scalarResource(item);
    if (!found.ok) return found;
    if (found.resource !== null) out.add(found.resource);
    // "0123" and "+123" are 123 to a server that coerces the argument to an integer (pydantic,
    // zod's coerce, parseInt): both are judged.
    if (typeof item === "string" && found.resource !== null) out.add(asNumberReads(item));
  }
  return { ok: true, resources: [...out] };
}

function toolCall(params: unknown, config: McpConfig): ActionDraft[] | Rejection {
  if (!isJsonObject(params)) return reject("mcp_invalid_message", "tools/call without a tool name");
  const name = field(params, "name");
  if (!name.ok) return name;
  if (typeof name.value !== "string") return reject("mcp_invalid_message", "tools/call without a tool name");
  const bad = checkToolName(name.value, config);
  if (bad) return bad;
  const rawArgs = field(params, "arguments");
  if (!rawArgs.ok) return rawArgs;
  const args = rawArgs.value ?? {};
  if (!isJsonObject(args)) return reject("mcp_invalid_message", "tools/call arguments must be an object");
  const tool = config.tools.find((t) => toolMatcher(t).exact(name.value as string));
  const effect: Effect = tool ? tool.effect : config.unknownToolEffect;
  const named = new Set<string>();
  if (tool?.resourceArg) {
    // In every spelling of its name (`volumeId` for `volume_id`): a server that accepts either
    // acts on the resource it names, which was otherwise no resource at all ("-").
    const arg = lookupAll(args, tool.resourceArg, { aliases: true });
    if (!arg.ok) return arg;
    for (const value of arg.values) {
      const found = resourcesOf(value, tool.resourceArg);
      if (!found.ok) return found;
      for (const resource of found.resources) named.add(resource);
    }
  }
  const resources = [...named];
  const detail = { method: "tools/call", arguments: args, ...(tool ? {} : { note: "tool not in the service descriptor" }) };
  if (resources.length <= 1) {
    const resource = resources[0];
    return [{ operation: name.value, effect, resource: resource ?? NO_RESOURCE, keys: resource ? [resource] : [], detail }];
  }
  // One action per resource; only the first carries the arguments (n resources, not n times n).
  return resources.map((resource, index) => ({
    operation: name.value as string,
    effect,
    resource,
    keys: [resource],
    detail: index === 0 ? { ...detail, resourceIndex: 0 } : { method: "tools/call", resourceIndex: index },
  }));
}

function messageDrafts(message: JsonValue, config: McpConfig): ActionDraft[] | Rejection {
  const draft = messageDraft(message, config);
  if (Array.isArray(draft)) return draft;
  return "ok" in draft ? draft : [draft];
}

function messageDraft(message: JsonValue, config: McpConfig): ActionDraft | ActionDraft[] | Rejection {
  if (!isJsonObject(message)) return reject("mcp_invalid_message", "not a JSON-RPC 2.0 message");
  const read: Fields = {};
  for (const key of ["jsonrpc", "method", "params", "result", "error"]) {
    const found = field(message, key);
    if (!found.ok) return found;
    read[key] = found.value;
  }
  if (read["jsonrpc"] !== "2.0") return reject("mcp_invalid_message", "not a JSON-RPC 2.0 message");
  const method = read["method"];
  const isResponse = read["result"] !== undefined || read["error"] !== undefined;
  if (method === undefined) {
    // A response to a server request (sampling, elicitation): carries data back, acts on nothing.
    if (isResponse) return { operation: "response", effect: "read", resource: NO_RESOURCE, keys: [] };
    return reject("mcp_invalid_message", "JSON-RPC message without a method");
  }
  if (isResponse) return reject("mcp_invalid_message", "a JSON-RPC message cannot be both a request and a response");
  if (typeof method !== "string" || method === "") return reject("mcp_invalid_message", "JSON-RPC method must be a string");
  const params = read["params"];
  if (params !== undefined && !isJsonObject(params) && !Array.isArray(params)) {
    return reject("mcp_invalid_message", "JSON-RPC params must be an object or array");
  }
  if (method === "tools/call") return toolCall(params, config);

  const declared = config.methods.find((m) => m.name === method);
  const effect = Object.hasOwn(MCP_METHODS, method) ? (MCP_METHODS[method] as Effect) : declared?.effect;
  if (effect === undefined) {
    return reject("mcp_unknown_method", `${JSON.stringify(method.slice(0, 100))} is not an MCP method (names are case-sensitive), and the service descriptor does not declare it (mcp.methods)`);
  }
  if (URI_METHODS.has(method)) {
    const uri = isJsonObject(params) ? field(params, "uri") : { ok: true as const, value: undefined };
    if (!uri.ok) return uri;
    if (typeof uri.value !== "string" || uri.value === "") return reject("mcp_invalid_message", `${method} without a resource URI`);
    const normalised = normalizeResourceUri(uri.value);
    if (!normalised.ok) return normalised;
    return { operation: method, effect, resource: normalised.uri, keys: [normalised.uri], detail: { method } };
  }
  return { operation: method, effect, resource: NO_RESOURCE, keys: [], detail: { method, ...(declared ? { note: "method declared by the service descriptor" } : {}) } };
}

export function classifyMcp(req: CanonicalRequest, config: McpConfig): DraftResult {
  // GET opens the server-to-client event stream; DELETE ends the session.
  if ((req.method === "GET" || req.method === "DELETE" || req.method === "OPTIONS") && (!req.body || req.body.length === 0)) {
    const operation = req.method === "GET" ? "stream" : req.method === "DELETE" ? "session/terminate" : "OPTIONS";
    return { ok: true, drafts: [{ operation, effect: "read", resource: NO_RESOURCE, keys: [], detail: { method: req.method } }] };
  }
  if (req.method !== "POST") return reject("mcp_invalid_request", `MCP does not use ${req.method} with a body`);
  const text = readTextBody(req);
  if (!text.ok) return text;
  if (text.media.type !== "" && !isJsonMediaType(text.media.type)) {
    return reject("unsupported_content_type", `cannot inspect an MCP body of type "${text.media.type}"`);
  }
  const json = parseJsonText(text.text);
  if (!json.ok) return json;
  const messages = Array.isArray(json.value) ? json.value : [json.value];
  if (messages.length === 0) return reject("mcp_invalid_message", "empty JSON-RPC batch");
  if (messages.length > MAX_BATCH) return reject("mcp_batch_too_large", `batch of more than ${MAX_BATCH} messages`);
  const drafts: ActionDraft[] = [];
  for (const [index, message] of messages.entries()) {
    const found = messageDrafts(message, config);
    if (!Array.isArray(found)) return found;
    for (const draft of found) {
      if (messages.length > 1) draft.detail = { ...draft.detail, batchIndex: index };
      drafts.push(draft);
    }
  }
  return { ok: true, drafts };
}
