/**
 * MCP over streamable HTTP: JSON-RPC 2.0 messages, single or batched. `tools/call` is the only
 * method that acts on the world; its effect comes from the descriptor's tool list (unknown tools
 * are writes). Protocol plumbing (initialize, lists, reads, notifications, responses) is a read.
 */
import { isJsonMediaType, parseJsonText, readTextBody } from "@/lib/semantics/body";
import type { McpConfig } from "@/lib/semantics/descriptors/schema";
import { globMatch } from "@/lib/semantics/glob";
import { isJsonObject, type JsonValue } from "@/lib/semantics/json";
import { getPath } from "@/lib/semantics/when";
import { NO_RESOURCE, reject, type ActionDraft, type CanonicalRequest, type DraftResult, type Effect, type Rejection } from "@/lib/semantics/types";

const READ_METHODS = new Set([
  "initialize", "ping", "tools/list", "resources/list", "resources/read", "resources/templates/list",
  "resources/subscribe", "resources/unsubscribe", "prompts/list", "prompts/get", "completion/complete",
]);
const MAX_BATCH = 50;

function resourceString(value: unknown): string | null {
  if (typeof value === "string" && value !== "") return value;
  if (typeof value === "number") return String(value);
  return null;
}

function messageDraft(message: JsonValue, config: McpConfig): ActionDraft | Rejection {
  if (!isJsonObject(message) || message["jsonrpc"] !== "2.0") return reject("mcp_invalid_message", "not a JSON-RPC 2.0 message");
  const method = message["method"];
  if (method === undefined) {
    // A response to a server request (sampling, elicitation): carries data back, acts on nothing.
    if ("result" in message || "error" in message) return { operation: "response", effect: "read", resource: NO_RESOURCE, keys: [] };
    return reject("mcp_invalid_message", "JSON-RPC message without a method");
  }
  if (typeof method !== "string" || method === "") return reject("mcp_invalid_message", "JSON-RPC method must be a string");
  const params = message["params"];
  if (params !== undefined && !isJsonObject(params) && !Array.isArray(params)) {
    return reject("mcp_invalid_message", "JSON-RPC params must be an object or array");
  }
  if (method === "tools/call") {
    const name = isJsonObject(params) ? params["name"] : undefined;
    if (typeof name !== "string" || name === "") return reject("mcp_invalid_message", "tools/call without a tool name");
    const args = isJsonObject(params) ? (params["arguments"] ?? {}) : {};
    if (!isJsonObject(args)) return reject("mcp_invalid_message", "tools/call arguments must be an object");
    const tool = config.tools.find((t) => globMatch(t.name, name));
    const effect: Effect = tool ? tool.effect : config.unknownToolEffect;
    const resource = tool?.resourceArg ? resourceString(getPath(args, tool.resourceArg)) : null;
    return {
      operation: name,
      effect,
      resource: resource ?? NO_RESOURCE,
      keys: resource ? [resource] : [],
      detail: { method, arguments: args, ...(tool ? {} : { note: "tool not in the service descriptor" }) },
    };
  }
  if (method === "resources/read") {
    const uri = isJsonObject(params) ? resourceString(params["uri"]) : null;
    return { operation: method, effect: "read", resource: uri ?? NO_RESOURCE, keys: uri ? [uri] : [], detail: { method } };
  }
  const effect: Effect = READ_METHODS.has(method) || method.startsWith("notifications/") ? "read" : "write";
  return { operation: method, effect, resource: NO_RESOURCE, keys: [], detail: { method } };
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
    const draft = messageDraft(message, config);
    if ("ok" in draft) return draft;
    if (messages.length > 1) draft.detail = { ...draft.detail, batchIndex: index };
    drafts.push(draft);
  }
  return { ok: true, drafts };
}
