/**
 * REST classification: method defaults, refined by descriptor routes (path templates with an
 * optional condition on the JSON body). Method overrides (`X-HTTP-Method-Override`, `_method`)
 * are honoured by many frameworks, so every method the server might act on is classified and
 * the most severe wins.
 *
 * Methods are matched exactly: a route applies to the methods it lists (or to all with "*").
 * HEAD runs the GET handler on most servers but is not GET to a policy: without a route that
 * lists HEAD it is classified like GET under its own operation, `HEAD <operation>` (`HEAD
 * repos.get`), so a rule that allows `repos.get` allows GET only.
 */
import { parseFormStrict, parseJsonText, readTextBody } from "@/lib/semantics/body";
import type { RestConfig, RestRoute } from "@/lib/semantics/descriptors/schema";
import { matchWhen } from "@/lib/semantics/when";
import {
  NO_RESOURCE,
  reject,
  type ActionDraft,
  type CanonicalRequest,
  type DraftResult,
  type Effect,
  type Rejection,
} from "@/lib/semantics/types";

const METHOD_EFFECTS: Record<string, Effect> = {
  GET: "read",
  HEAD: "read",
  OPTIONS: "read",
  POST: "write",
  PUT: "write",
  PATCH: "write",
  DELETE: "destructive",
};

/** GET/HEAD/OPTIONS read, POST/PUT/PATCH write, DELETE and any other method destructive. */
export function methodEffect(method: string): Effect {
  return Object.hasOwn(METHOD_EFFECTS, method) ? (METHOD_EFFECTS[method] as Effect) : "destructive";
}

const OVERRIDE_HEADERS = ["x-http-method-override", "x-http-method", "x-method-override"];
const METHOD_TOKEN = /^[A-Za-z]+$/;

/** The request method plus any override a framework might apply instead. */
export function effectiveMethods(req: CanonicalRequest): string[] | Rejection {
  const methods = new Set([req.method]);
  for (const name of OVERRIDE_HEADERS) {
    const value = req.headers[name];
    if (value === undefined) continue;
    if (!METHOD_TOKEN.test(value.trim())) return reject("invalid_method_override", `invalid ${name} header`);
    methods.add(value.trim().toUpperCase());
  }
  const sources = [req.query];
  if (req.body && req.body.length > 0 && /x-www-form-urlencoded/i.test(req.headers["content-type"] ?? "")) {
    const text = readTextBody(req);
    if (text.ok) sources.push(text.text);
  }
  for (const source of sources) {
    if (!/_method/i.test(source)) continue;
    const form = parseFormStrict(source);
    // `_method=GET&_method=DELETE`: which one a framework applies is not knowable.
    if (!form.ok) return reject("invalid_method_override", `ambiguous _method parameter: ${form.reason}`);
    const value = form.fields.get("_method");
    if (value === undefined) continue;
    if (!METHOD_TOKEN.test(value.trim())) return reject("invalid_method_override", "invalid _method parameter");
    methods.add(value.trim().toUpperCase());
  }
  return [...methods];
}

/** One part of a route's path template, parsed once per route (not once per request). */
type TemplatePart = { kind: "greedy"; name: string } | { kind: "variable"; name: string } | { kind: "literal"; text: string; folded: string };

interface CompiledRoute {
  /** The route's methods, upper-cased ("*": any). */
  methods: ReadonlySet<string>;
  parts: readonly TemplatePart[];
}

const GREEDY = /^\{([A-Za-z0-9_]+)\+\}$/;
const VARIABLE = /^\{([A-Za-z0-9_]+)\}$/;

// Descriptor routes are immutable once parsed: what is derived from one is kept with it, so the
// request path pays no split, regex or array per route tried (the REST matcher was the worker's
// largest allocator per request: docs/benchmarks.md).
const compiledRoutes = new WeakMap<RestRoute, CompiledRoute>();

function compileRoute(route: RestRoute): CompiledRoute {
  let c = compiledRoutes.get(route);
  if (c) return c;
  const parts = route.path
    .split("/")
    .slice(1)
    .map((part): TemplatePart => {
      const greedy = GREEDY.exec(part);
      if (greedy) return { kind: "greedy", name: greedy[1] as string };
      const variable = VARIABLE.exec(part);
      if (variable) return { kind: "variable", name: variable[1] as string };
      return { kind: "literal", text: part, folded: part.toLowerCase() };
    });
  c = { methods: new Set(routeMethods(route)), parts };
  compiledRoutes.set(route, c);
  return c;
}

/**
 * Matches "/repos/{owner}/{repo}" against path segments; `{rest+}` takes one or more (and only as
 * the last part). Returns the parameters, or null.
 */
function matchTemplate(parts: readonly TemplatePart[], segments: readonly string[], fold: boolean): Record<string, string> | null {
  let params: Record<string, string> | null = null;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as TemplatePart;
    if (part.kind === "greedy") {
      if (i !== parts.length - 1 || segments.length <= i) return null;
      params ??= {};
      params[part.name] = segments.slice(i).join("/");
      return params;
    }
    const segment = segments[i];
    if (segment === undefined) return null;
    if (part.kind === "variable") {
      if (segment === "") return null;
      params ??= {};
      params[part.name] = segment;
    } else if (fold ? segment.toLowerCase() !== part.folded : segment !== part.text) {
      return null;
    }
  }
  return segments.length === parts.length ? (params ?? {}) : null;
}

function routeMethods(route: RestRoute): string[] {
  return (Array.isArray(route.method) ? route.method : [route.method]).map((m) => m.toUpperCase());
}

function methodMatches(route: CompiledRoute, method: string): boolean {
  return route.methods.has("*") || route.methods.has(method);
}

function fill(template: string, params: Record<string, string>, fold: boolean): string {
  const out = template.replace(/\{([A-Za-z0-9_]+)\+?\}/g, (_, name: string) => params[name] ?? "");
  return fold ? out.toLowerCase() : out;
}

/**
 * Segments for matching: each without its matrix parameters (";…"), so a server that strips
 * them and one that does not both land on a route at least as strict as the real target.
 */
function matchSegments(path: string): string[] {
  const parts = path.split("/");
  const out = new Array<string>(parts.length - 1);
  for (let i = 1; i < parts.length; i++) {
    const s = parts[i] as string;
    const semi = s.indexOf(";");
    out[i - 1] = semi < 0 ? s : s.slice(0, semi);
  }
  return out;
}

export function classifyRest(req: CanonicalRequest, config: RestConfig): DraftResult {
  const methods = effectiveMethods(req);
  if (!Array.isArray(methods)) return methods;
  const segments = matchSegments(req.path);
  let body: { value: unknown } | null = null;
  const jsonBody = (): { value: unknown } | Rejection => {
    if (body) return body;
    if (!req.body || req.body.length === 0) return (body = { value: undefined });
    const text = readTextBody(req);
    if (!text.ok) return text;
    const json = parseJsonText(text.text);
    if (!json.ok) return json;
    return (body = { value: json.value });
  };

  const drafts: ActionDraft[] = [];
  const match = (method: string, routes: readonly RestRoute[]) => matchRoute(method, routes, req, segments, config.caseInsensitive, jsonBody);
  for (const method of methods) {
    let draft = match(method, method === "HEAD" ? config.routes.filter((r) => compileRoute(r).methods.has("HEAD")) : config.routes);
    if (draft === null && method === "HEAD") {
      // No route names HEAD here: judged as the GET it mirrors, under an operation of its own.
      const get = match("GET", config.routes) ?? unmatched("GET", req.path, req.path);
      if ("ok" in get) return get;
      const operation = get.operation.startsWith("GET /") ? get.operation.slice(4) : get.operation;
      draft = { ...get, operation: `HEAD ${operation}`, detail: { ...get.detail, method: "HEAD", note: "HEAD is judged like GET under its own operation name" } };
    }
    draft ??= unmatched(method, req.path, req.path);
    if ("ok" in draft) return draft;
    drafts.push(draft);
  }
  return { ok: true, drafts };
}

/** The first route for this method, path and body; null when none applies. */
function matchRoute(
  method: string,
  routes: readonly RestRoute[],
  req: CanonicalRequest,
  segments: readonly string[],
  fold: boolean,
  jsonBody: () => { value: unknown } | Rejection,
): ActionDraft | Rejection | null {
  for (const route of routes) {
    const compiled = compileRoute(route);
    if (!methodMatches(compiled, method)) continue;
    const params = matchTemplate(compiled.parts, segments, fold);
    if (!params) continue;
    if (route.when) {
      const parsed = jsonBody();
      if ("ok" in parsed) return parsed;
      const when = matchWhen(route.when, parsed.value);
      if (!when.ok) return when;
      if (!when.match) continue;
    }
    const resource = route.resource !== undefined ? fill(route.resource, params, fold) : req.path;
    const detail: Record<string, unknown> = { method, path: req.path, route: route.path, params };
    if (route.resourceKind) detail["resourceKind"] = route.resourceKind;
    return {
      operation: route.operation,
      effect: route.effect ?? methodEffect(method),
      resource: resource || NO_RESOURCE,
      detail,
      keys: [resource, ...Object.values(params)],
    };
  }
  return null;
}

/** A request no route describes: effect by method, operation "METHOD /path". */
export function unmatched(method: string, path: string, resource: string): ActionDraft {
  return {
    operation: `${method} ${path}`,
    effect: methodEffect(method),
    resource,
    detail: { method, path },
    keys: [resource],
  };
}
