/**
 * REST classification: method defaults, refined by descriptor routes (path templates with an
 * optional condition on the JSON body). Method overrides (`X-HTTP-Method-Override`, `_method`)
 * are honoured by many frameworks, so every method the server might act on is classified and
 * the most severe wins (`method-override.ts`).
 *
 * Methods are matched exactly: a route applies to the methods it lists (or to all with "*").
 * HEAD runs the GET handler on most servers but is not GET to a policy: without a route that
 * lists HEAD it is classified like GET under its own operation, `HEAD <operation>` (`HEAD
 * repos.get`), so a rule that allows `repos.get` allows GET only.
 */
import { formReading, mayBeJsonBody, MULTIPART_FORMS, notAsciiReadable, parseJsonText, parseMediaType, parseMultipart, queryParameterNames, readAsForm, readTextBody } from "@/lib/semantics/body";
import type { RestConfig, RestRoute } from "@/lib/semantics/descriptors/schema";
import { effectiveMethods } from "@/lib/semantics/method-override";
import { foldPath, foldSegment, withoutFormatSuffix, withoutMatrix, type FoldedPath } from "@/lib/semantics/path-fold";
import { matchWhenBody } from "@/lib/semantics/when";
import {
  effectRank,
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

export { effectiveMethods };

/** One part of a route's path template, parsed once per route (not once per request). */
type TemplatePart = { kind: "greedy"; name: string } | { kind: "variable"; name: string } | { kind: "literal"; text: string; lower: string; folded: string };

interface CompiledRoute {
  /** The route's methods, upper-cased ("*": any). */
  methods: ReadonlySet<string>;
  parts: readonly TemplatePart[];
  /** The template once folded (`/volumes/{}`): routes a folding server cannot tell apart share it. */
  shape: string;
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
      return { kind: "literal", text: part, lower: part.toLowerCase(), folded: foldSegment(withoutMatrix(part)) };
    });
  const shape = parts.map((p) => (p.kind === "literal" ? p.folded : p.kind === "greedy" ? "{+}" : "{}")).join("/");
  c = { methods: new Set(routeMethods(route)), parts, shape };
  compiledRoutes.set(route, c);
  return c;
}

/**
 * Matches "/repos/{owner}/{repo}" against path segments; `{rest+}` takes one or more (and only as
 * the last part). `keys`, when given, are the segments to compare with folded literals (the
 * folded reading of `path-fold.ts`); otherwise literals compare with `segments`, exactly or
 * lower-cased when `fold`. Parameters capture `segments`. Returns the parameters, or null.
 */
function matchTemplate(
  parts: readonly TemplatePart[],
  segments: readonly string[],
  fold: boolean,
  keys: readonly string[] | null = null,
): Record<string, string> | null {
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
    } else if (keys ? keys[i] !== part.folded : fold ? segment.toLowerCase() !== part.lower : segment !== part.text) {
      return null;
    }
  }
  return segments.length === parts.length ? (params ?? {}) : null;
}

/** A route with what is derived from it, and its first part's key in each way of comparing. */
interface IndexedRoute {
  route: RestRoute;
  compiled: CompiledRoute;
}

/**
 * A route list's routes by their first literal, in each way a reading compares literals (as
 * written, lower-cased, folded): a request is compared only with the routes whose first part can
 * match its first segment, and with those whose first part is a parameter, in the list's order
 * (the first route that applies is the one judged, so the order is what a scan of the whole list
 * would see). Built once per route list: descriptors are immutable once parsed.
 */
interface RouteIndex {
  all: readonly IndexedRoute[];
  /** By first literal: [as written, lower-cased, folded]. */
  byFirst: readonly [Map<string, IndexedRoute[]>, Map<string, IndexedRoute[]>, Map<string, IndexedRoute[]>];
  /** Routes whose first part is a parameter: the candidates of a first segment no literal names. */
  open: readonly IndexedRoute[];
}

const routeIndexes = new WeakMap<readonly RestRoute[], RouteIndex>();

function literalKey(part: TemplatePart | undefined, mode: 0 | 1 | 2): string | null {
  if (part?.kind !== "literal") return null;
  return mode === 0 ? part.text : mode === 1 ? part.lower : part.folded;
}

function routeIndex(routes: readonly RestRoute[]): RouteIndex {
  let index = routeIndexes.get(routes);
  if (index) return index;
  const all = routes.map((route) => ({ route, compiled: compileRoute(route) }));
  const open = all.filter((r) => r.compiled.parts[0]?.kind !== "literal");
  const byFirst = ([0, 1, 2] as const).map((mode) => {
    const map = new Map<string, IndexedRoute[]>();
    for (const r of all) {
      const key = literalKey(r.compiled.parts[0], mode);
      if (key === null || map.has(key)) continue;
      map.set(key, all.filter((o) => o.compiled.parts[0]?.kind !== "literal" || literalKey(o.compiled.parts[0], mode) === key));
    }
    return map;
  }) as unknown as RouteIndex["byFirst"];
  index = { all, byFirst, open };
  routeIndexes.set(routes, index);
  return index;
}

/** The routes a reading's first segment can match, in list order. */
function candidates(routes: readonly RestRoute[], reading: Reading, fold: boolean): readonly IndexedRoute[] {
  const index = routeIndex(routes);
  const first = reading.keys ? reading.keys[0] : fold ? reading.segments[0]?.toLowerCase() : reading.segments[0];
  if (first === undefined) return index.open;
  return index.byFirst[reading.keys ? 2 : fold ? 1 : 0].get(first) ?? index.open;
}

// The routes that list HEAD, per route list (the same list object for every HEAD request, so its
// index is built once).
const headLists = new WeakMap<readonly RestRoute[], readonly RestRoute[]>();

function headRoutes(routes: readonly RestRoute[]): readonly RestRoute[] {
  let heads = headLists.get(routes);
  if (!heads) {
    heads = routes.filter((r) => compileRoute(r).methods.has("HEAD"));
    headLists.set(routes, heads);
  }
  return heads;
}

function routeMethods(route: RestRoute): string[] {
  return (Array.isArray(route.method) ? route.method : [route.method]).map((m) => m.toUpperCase());
}

function methodMatches(route: CompiledRoute, method: string): boolean {
  return route.methods.has("*") || route.methods.has(method);
}

/**
 * A parameter as the server reads it: percent-escapes decoded (the canonical path keeps `%40`
 * and `@` apart, a server does not), so a rule naming `prod@db` also names `prod%40db`. Escapes
 * that are not UTF-8 stay as sent.
 */
function decodedParam(value: string): string {
  if (!value.includes("%")) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** Resource templates split at their parameters (literal text at even indexes, names at odd ones), split once each. */
const templateParts = new Map<string, readonly string[]>();
const MAX_TEMPLATES = 4096;

function partsOf(template: string): readonly string[] {
  let parts = templateParts.get(template);
  if (parts === undefined) {
    // A capturing split keeps the names: "a/{x}/b/{y+}" -> ["a/", "x", "/b/", "y", ""].
    parts = template.split(/\{([A-Za-z0-9_]+)\+?\}/);
    if (templateParts.size >= MAX_TEMPLATES) templateParts.clear();
    templateParts.set(template, parts);
  }
  return parts;
}

/** The template with each `{name}` (or `{name+}`) replaced by that parameter as the server reads it. */
function fill(template: string, params: Record<string, string>, fold: boolean): string {
  const parts = partsOf(template);
  let out = parts[0] as string;
  for (let i = 1; i < parts.length; i += 2) out += decodedParam(params[parts[i] as string] ?? "") + (parts[i + 1] as string);
  return fold ? out.toLowerCase() : out;
}

/**
 * Segments for matching: each without its matrix parameters (";…"), so a server that strips
 * them and one that does not both land on a route at least as strict as the real target.
 */
function matchSegments(path: string): string[] {
  const parts = path.split("/");
  const out = new Array<string>(parts.length - 1);
  for (let i = 1; i < parts.length; i++) out[i - 1] = withoutMatrix(parts[i] as string);
  return out;
}

// Per route list and case mode: do some literals fold to something else than what the written
// reading compares them with (`/Exact` on a case-sensitive service)? Then every path is read twice.
const literalsFold = new WeakMap<readonly RestRoute[], [boolean, boolean]>();

function foldingLiterals(routes: readonly RestRoute[], fold: boolean): boolean {
  let cached = literalsFold.get(routes);
  if (!cached) {
    const parts = routes.flatMap((r) => compileRoute(r).parts.filter((p) => p.kind === "literal"));
    cached = [parts.some((p) => p.folded !== p.text), parts.some((p) => p.folded !== p.lower)];
    literalsFold.set(routes, cached);
  }
  return cached[fold ? 1 : 0];
}

/** Can the folded reading match another route than the one `matchSegments` gives? */
function differs(folded: FoldedPath, segments: readonly string[], fold: boolean, routes: readonly RestRoute[]): boolean {
  if (folded.keys.length !== segments.length || foldingLiterals(routes, fold)) return true;
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i] as string;
    if (folded.keys[i] !== (fold ? s.toLowerCase() : s)) return true;
    // A parameter would capture another value (`0123` read as 123, `prod.` as prod).
    if (folded.values[i] !== s) return true;
  }
  return false;
}

/** One reading of the path: its segments and, for the folded reading, their folded keys. */
interface Reading {
  segments: readonly string[];
  keys: readonly string[] | null;
  /** The format-suffix reading: only routes whose last part is a literal are compared with it. */
  literalTail?: boolean;
  /** A folded reading's path as written (`keys: null`), to tell whether folding was needed. */
  written?: readonly string[];
}

/**
 * Each method is judged on two readings of the path when they differ: as written (literals
 * exact, or lower-cased on a `caseInsensitive` service; `;…` dropped), and folded the way many
 * servers route (`path-fold.ts`: trailing slash, case, `;…`, non-ASCII case). A server may
 * dispatch either way, so the stricter reading's action is kept; when both have the same effect
 * but name different operations or resources, both are kept and a policy must allow both.
 */
export function classifyRest(req: CanonicalRequest, config: RestConfig): DraftResult {
  const methods = effectiveMethods(req);
  if (!Array.isArray(methods)) return methods;
  const fold = config.caseInsensitive;
  const segments = matchSegments(req.path);
  const written: Reading = { segments, keys: null };
  const foldedPath = foldPath(req.path);
  const folded: Reading | null = differs(foldedPath, segments, fold, config.routes) ? { segments: foldedPath.values, keys: foldedPath.keys, written: segments } : null;
  const unsuffixed = withoutFormatSuffix(foldedPath);
  const suffixless: Reading | null = unsuffixed ? { segments: unsuffixed.values, keys: unsuffixed.keys, literalTail: true, written: segments } : null;
  let body: { value: unknown; form?: Record<string, unknown> } | null = null;
  const jsonBody = (): { value: unknown; form?: Record<string, unknown> } | Rejection => {
    if (body) return body;
    if (!req.body || req.body.length === 0) return (body = { value: undefined });
    const text = readTextBody(req);
    if (!text.ok) return text;
    if (text.media.type === "multipart/form-data") {
      return reject("unsupported_content_type", "a body condition of this route cannot be checked on a multipart body: send JSON");
    }
    const json = parseJsonText(text.text);
    if (!json.ok) return json;
    // Labelled a form, the same text is a form to servers that parse by Content-Type (Rails,
    // Express, PHP): `{"sha":"a","x":"&force=true&"}` carries force=true there; so it is for a POST
    // labelled nothing, which Rack parses as a form. The condition is checked on both readings.
    if (readAsForm(req.method, text.media.type)) {
      const form = formReading(text.text);
      if (!form.ok) return form;
      return (body = { value: json.value, form: form.value });
    }
    return (body = { value: json.value });
  };

  // The body's parameters as a server that merges them with the route's reads them: each reading
  // of the body (a JSON object, for a body `mayBeJsonBody` says a server may read as JSON or that
  // parses as one; a form, for a body labelled one; the fields of a multipart body). A body a
  // server may read but that cannot be read exactly (JSON that does not parse or has a duplicate
  // key, a form field given twice, a compressed body, another charset) is refused: the parameters
  // it names cannot be ruled out (a multipart field given twice is read with each value).
  // Worked out only when a matched route has a resource.
  let parameters: Array<Record<string, unknown>> | Rejection | undefined;
  const bodyParameters = (): Array<Record<string, unknown>> | Rejection => {
    parameters ??= readBodyParameters(req, jsonBody);
    return parameters;
  };

  const match = (method: string, routes: readonly RestRoute[], reading: Reading) => matchRoute(method, routes, req, reading, fold, jsonBody);
  const draftFor = (method: string, reading: Reading): ActionDraft[] | Rejection => {
    const drafts = match(method, method === "HEAD" ? headRoutes(config.routes) : config.routes, reading);
    if (drafts !== null || method !== "HEAD") return drafts ?? [unmatched(method, req.path, req.path)];
    // No route names HEAD here: judged as the GET it mirrors, under an operation of its own.
    const gets = match("GET", config.routes, reading) ?? [unmatched("GET", req.path, req.path)];
    if ("ok" in gets) return gets;
    return gets.map((get) => {
      const operation = get.operation.startsWith("GET /") ? get.operation.slice(4) : get.operation;
      return { ...get, operation: `HEAD ${operation}`, detail: { ...get.detail, method: "HEAD", note: "HEAD is judged like GET under its own operation name" } };
    });
  };

  const drafts: ActionDraft[] = [];
  for (const method of methods) {
    const asWritten = draftFor(method, written);
    if ("ok" in asWritten) return asWritten;
    let judged = asWritten;
    if (folded) {
      const asFolded = draftFor(method, folded);
      if ("ok" in asFolded) return asFolded;
      judged = strictest([...asFolded, ...asWritten]);
    }
    if (suffixless) {
      // A route named by the path without its format suffix (`…/restore.json` on a server that
      // routes it to `…/restore`); no such route adds nothing (the other readings stand).
      const routes = method === "HEAD" ? headRoutes(config.routes) : config.routes;
      const asUnsuffixed = match(method, routes, suffixless);
      if (asUnsuffixed !== null && "ok" in asUnsuffixed) return asUnsuffixed;
      if (asUnsuffixed !== null) judged = strictest([...asUnsuffixed, ...judged]);
    }
    if (config.bodyNamesPathParameters) {
      const fromBody = bodyReadings(judged, config.routes, bodyParameters, fold);
      if (!Array.isArray(fromBody)) return fromBody;
      judged = [...judged, ...fromBody];
    }
    // A request left unmatched is also named by the path a server may serve it as (worked out only
    // for such a request: a matched route is named by its route).
    for (const draft of judged) {
      drafts.push(draft);
      if (draft.resource !== req.path) continue;
      const plain = draft.operation === `${method} ${req.path}` ? method : draft.operation === `HEAD ${req.path}` ? "HEAD" : null;
      const served = plain === null ? null : servedSpelling(req.path);
      if (served !== null && plain !== null) {
        drafts.push({ ...draft, operation: `${plain} ${served}`, resource: served, keys: [served], detail: { ...draft.detail, servedAs: served, note: "the path as a server that drops ;parameters and trailing dots serves it" } });
      }
    }
  }
  return { ok: true, drafts };
}

function stricter(a: ActionDraft, b: ActionDraft): ActionDraft[] {
  const diff = effectRank(a.effect) - effectRank(b.effect);
  if (diff !== 0) return [diff > 0 ? a : b];
  return a.operation === b.operation && a.resource === b.resource ? [a] : [a, b];
}

/** The drafts of the highest effect among several readings, each operation and resource once. */
function strictest(drafts: readonly ActionDraft[]): ActionDraft[] {
  const top = Math.max(...drafts.map((d) => effectRank(d.effect)));
  const out: ActionDraft[] = [];
  for (const d of drafts) {
    if (effectRank(d.effect) !== top) continue;
    if (!out.some((o) => o.operation === d.operation && o.resource === d.resource)) out.push(d);
  }
  return out;
}

/**
 * The first route for this method, path and body; null when none applies. In the folded reading,
 * later routes whose templates are the same once folded (`/Volumes/{id}` and `/volumes/{id}` on
 * a case-sensitive service) are as likely to be the one a folding server runs: the strictest of
 * them is taken.
 */
function matchRoute(
  method: string,
  routes: readonly RestRoute[],
  req: CanonicalRequest,
  reading: Reading,
  fold: boolean,
  jsonBody: () => { value: unknown; form?: Record<string, unknown> } | Rejection,
): ActionDraft[] | Rejection | null {
  let found: ActionDraft | null = null;
  let shape: string | null = null;
  // A conditional route whose condition only some servers read as met (`"force": "false"` is true
  // to JavaScript's `if`, false to Rails): one reading. The routes after it, or none (the
  // method's default), are the other; the stricter of the two is judged, so a loose value can
  // neither dodge an escalating condition nor win a de-escalating one (`dryRun: "false"`).
  let loose: ActionDraft | null = null;
  for (const { route, compiled } of candidates(routes, reading, fold)) {
    if (!methodMatches(compiled, method)) continue;
    if (reading.literalTail && compiled.parts[compiled.parts.length - 1]?.kind !== "literal") continue;
    if (shape !== null && compiled.shape !== shape) continue;
    const params = matchTemplate(compiled.parts, reading.segments, fold, reading.keys);
    if (!params) continue;
    const named = resourceParamInUrl(route, req.query);
    if (named) return named;
    if (route.when) {
      const inUrl = whenKeyInUrl(route, req.query);
      if (inUrl) return inUrl;
      const parsed = jsonBody();
      if ("ok" in parsed) return parsed;
      // Read at the top level and under each wrapper key that holds a key of the condition
      // (Rails' wrap_parameters): readings that disagree make the condition met loosely.
      const when = matchWhenBody(route.when, parsed.value);
      if (!when.ok) return when;
      const asForm = parsed.form ? matchWhenBody(route.when, parsed.form) : { ok: true as const, match: false };
      if (!asForm.ok) return asForm;
      if (!when.match && !asForm.match) continue;
      // Met exactly in the JSON body: the route applies. Met only loosely, or only in the form
      // reading of a body labelled a form: one reading of two.
      if (!(when.match && when.exact)) {
        const draft = routeDraft(route, method, params, req, foldedOnly(compiled.parts, reading, fold), fold);
        if (loose === null || effectRank(draft.effect) > effectRank(loose.effect)) loose = draft;
        continue;
      }
    }
    const draft = routeDraft(route, method, params, req, foldedOnly(compiled.parts, reading, fold), fold);
    if (!reading.keys) return loose ? stricter(loose, draft) : [draft];
    if (found === null || effectRank(draft.effect) > effectRank(found.effect)) found = draft;
    shape = compiled.shape;
  }
  // Both readings when they tie (another operation of the same effect: a policy may allow one and
  // not the other); the stricter alone otherwise.
  if (loose) return stricter(loose, found ?? unmatched(method, req.path, req.path));
  return found ? [found] : null;
}

/**
 * A key of the route's `when` condition sent in the URL (`PATCH …/git/refs/heads/main?force=true`).
 * Rails, PHP's `$_REQUEST` and Express apps that merge `req.query` into the body read URL
 * parameters as request parameters, so there the URL's `force=true` forces the update, while the
 * condition was checked on the JSON body only; other servers ignore it. Which reading a server
 * takes cannot be known, so the request is refused.
 */
function whenKeyInUrl(route: RestRoute, query: string): Rejection | null {
  if (!route.when || query === "") return null;
  const keys = new Set(Object.keys(route.when).map((path) => (path.split(".")[0] as string).toLowerCase()));
  for (const { name, base } of queryParameterNames(query)) {
    // `repository[private]` too: a server that wraps parameters reads it as the condition's key.
    const nested = name.split(/\[|\]\[|\]|\./).map((k) => k.trim())[1];
    if (keys.has(base) || (nested !== undefined && keys.has(nested))) {
      return reject(
        "ambiguous_parameter",
        `URL parameter ${JSON.stringify(name.slice(0, 40))} names "${keys.has(base) ? base : nested}", which decides whether ${route.operation} is ${route.effect ?? "more severe"}: servers that merge URL and body parameters would read it, others would not; send it in the JSON body only`,
      );
    }
  }
  return null;
}

const RESOURCE_PARAM = /\{([A-Za-z0-9_]+)\+?\}/g;
const resourceParamNames = new WeakMap<RestRoute, ReadonlySet<string>>();

/** The template parameters a route's resource is made of (`{owner}/{repo}`: owner, repo), lower-cased. */
function resourceParams(route: RestRoute): ReadonlySet<string> {
  let names = resourceParamNames.get(route);
  if (!names) {
    names = new Set([...(route.resource ?? "").matchAll(RESOURCE_PARAM)].map((m) => (m[1] as string).toLowerCase()));
    resourceParamNames.set(route, names);
  }
  return names;
}

/**
 * A URL parameter named like a path parameter the route's resource is read from
 * (`DELETE /volumes/vol_stg?id=vol_prod` on `/volumes/{id}`). Laravel's `$request->id` reads the
 * query and body before the route's own parameter, and other frameworks that merge request and
 * route parameters differ on which wins, so such a server deletes `vol_prod` while the rules were
 * applied to `vol_stg`. Which one a server reads cannot be known: refused, as a condition's key in
 * the URL is.
 */
function resourceParamInUrl(route: RestRoute, query: string): Rejection | null {
  if (route.resource === undefined || query === "") return null;
  const names = resourceParams(route);
  if (names.size === 0) return null;
  for (const { name, base } of queryParameterNames(query)) {
    if (!names.has(base)) continue;
    return reject(
      "ambiguous_parameter",
      `URL parameter ${JSON.stringify(name.slice(0, 40))} names "${base}", the path parameter that ${route.operation}'s resource is read from: servers that read request parameters before route parameters (Laravel's $request->${base}) would act on the resource the URL parameter names, others on the path's; name the resource in the path only`,
    );
  }
  return null;
}

/**
 * The same actions on the resources a body names in the route's path parameters
 * (`DELETE /volumes/vol_stg` with `{"id": "vol_123"}` on `/volumes/{id}`): Laravel's
 * `$request->id` reads the body (and the query, refused above) before the route's own parameter,
 * so such a server deletes vol_123; which one a server reads cannot be known, so both are judged
 * and a policy must allow both. A value equal to the path's, or that is not a string or a number,
 * adds nothing.
 */
function bodyReadings(
  drafts: readonly ActionDraft[],
  routes: readonly RestRoute[],
  body: () => Array<Record<string, unknown>> | Rejection,
  fold: boolean,
): ActionDraft[] | Rejection {
  const out: ActionDraft[] = [];
  for (const draft of drafts) {
    const template = draft.detail?.["route"];
    const params = draft.detail?.["params"] as Record<string, string> | undefined;
    if (typeof template !== "string" || !params) continue;
    const route = routes.find((r) => r.path === template && r.operation === draft.operation && r.resource !== undefined);
    if (!route?.resource) continue;
    const names = [...route.resource.matchAll(RESOURCE_PARAM)].map((m) => m[1] as string);
    if (names.length === 0) continue;
    const readings = body();
    if (!Array.isArray(readings)) return readings;
    for (const values of readings) {
      const changed: Record<string, string> = { ...params };
      let differs = false;
      for (const name of names) {
        const value = Object.hasOwn(values, name) ? values[name] : undefined;
        if (typeof value !== "string" && !(typeof value === "number" && Number.isFinite(value))) continue;
        const text = String(value);
        if (text === decodedParam(params[name] ?? "")) continue;
        changed[name] = encodeURIComponent(text);
        differs = true;
      }
      if (!differs) continue;
      const resource = fill(route.resource, changed, fold);
      if (resource === draft.resource || out.some((o) => o.operation === draft.operation && o.resource === resource)) continue;
      out.push({
        ...draft,
        resource: resource || NO_RESOURCE,
        keys: [resource, ...names.map((n) => decodedParam(changed[n] ?? ""))],
        detail: { ...draft.detail, params: changed, note: "the resource as a server that reads the body's parameters before the route's (Laravel's $request->…) names it" },
      });
    }
  }
  return out;
}

const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder("utf-8");

/**
 * The readings of a body's parameters (see `bodyParameters` in `classifyRest`). `jsonBody` is
 * the JSON (and form) reading `when` conditions use, parsed once per request.
 */
function readBodyParameters(req: CanonicalRequest, jsonBody: () => { value: unknown; form?: Record<string, unknown> } | Rejection): Array<Record<string, unknown>> | Rejection {
  const bytes = req.body;
  if (!bytes || bytes.length === 0) return [];
  const media = parseMediaType(req.headers["content-type"]);
  if ("ok" in media) return media;
  if (MULTIPART_FORMS.has(media.type)) return multipartParameters(req, bytes, media.params);
  const readings: Array<Record<string, unknown>> = [];
  const parsed = jsonBody();
  if (!("ok" in parsed)) {
    if (parsed.form) readings.push(parsed.form);
    if (typeof parsed.value === "object" && parsed.value !== null && !Array.isArray(parsed.value)) readings.push(parsed.value as Record<string, unknown>);
    return readings;
  }
  // A body a server may read as JSON that does not parse (or has a duplicate key, which PHP and
  // JavaScript read as the last one) names parameters that cannot be ruled out.
  if (mayBeJsonBody(req.headers, media.type, bytes)) return parsed;
  // Not JSON: a form is still a form to the server.
  if (media.type !== "application/x-www-form-urlencoded") return readings;
  const text = asciiText(req, bytes, media.params, "form");
  if (typeof text !== "string") return text;
  const form = formReading(text);
  if (!form.ok) return form;
  readings.push(form.value);
  return readings;
}

/**
 * A form or multipart body as text, one character per byte: its structure (and a form's escapes)
 * is ASCII in any ASCII-compatible charset, as PHP and Rack parse it whatever the charset says.
 * A compressed body, or one in another charset, is refused.
 */
function asciiText(req: CanonicalRequest, bytes: Uint8Array, params: Record<string, string>, what: string): string | Rejection {
  return notAsciiReadable(req, params, `read the fields of a ${what}`) ?? latin1.decode(bytes);
}

/**
 * A multipart body's fields by name, in every spelling a server may read a part's name as
 * (`parseMultipart`, the parser `_method` is looked for with; PHP's mangling too: leading spaces
 * dropped, ` ` and `.` read as `_`). A file part counts (Laravel's `all()` merges files into
 * the bag `$request->id` reads). A name given by several parts is read both ways: the first
 * part's value (as some parsers keep it) and the last's (PHP, Rack); a name with `[` makes an
 * array, never a route parameter's value, and is skipped.
 */
function multipartParameters(req: CanonicalRequest, bytes: Uint8Array, params: Record<string, string>): Array<Record<string, unknown>> | Rejection {
  const text = asciiText(req, bytes, params, "multipart");
  if (typeof text !== "string") return text;
  const parsed = parseMultipart(text, params["boundary"]);
  if (!parsed.ok) return reject("invalid_multipart", `multipart body could not be parsed (${parsed.why}): the parameters it names cannot be ruled out`);
  const first: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  const last: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  let repeated = false;
  for (const part of parsed.parts) {
    const names = new Set<string>();
    for (const raw of part.names) {
      if (raw.includes("[")) continue;
      names.add(raw);
      let name = raw.replace(/^ +/, "");
      const nul = name.indexOf("\0");
      if (nul >= 0) name = name.slice(0, nul);
      names.add(name.replace(/[ .]/g, "_"));
    }
    if (names.size === 0) continue;
    // The value's bytes as UTF-8 (one character per byte in the parsed text).
    const value = utf8.decode(Uint8Array.from(part.value, (c) => c.charCodeAt(0)));
    for (const name of names) {
      if (name === "") continue;
      if (Object.hasOwn(first, name)) repeated = true;
      else first[name] = value;
      last[name] = value;
    }
  }
  return repeated ? [first, last] : [first];
}

/** Matched only in a folded reading: the path as written does not match the route itself. */
function foldedOnly(parts: Parameters<typeof matchTemplate>[0], reading: Reading, fold: boolean): boolean {
  return reading.keys !== null && reading.written !== undefined && matchTemplate(parts, reading.written, fold, null) === null;
}

function routeDraft(route: RestRoute, method: string, params: Record<string, string>, req: CanonicalRequest, foldedOnly: boolean, fold: boolean): ActionDraft {
  const resource = route.resource !== undefined ? fill(route.resource, params, fold) : req.path;
  const detail: Record<string, unknown> = { method, path: req.path, route: route.path, params };
  if (route.resourceKind) detail["resourceKind"] = route.resourceKind;
  if (foldedOnly) detail["note"] = "route matched with the path folded (trailing slash, case, ;parameters), as many servers route it";
  return {
    operation: route.operation,
    effect: route.effect ?? methodEffect(method),
    resource: resource || NO_RESOURCE,
    detail,
    keys: [resource, ...Object.values(params).map(decodedParam)],
  };
}

/**
 * The path as a server that strips `;parameters` and trailing dots or spaces (Tomcat, Spring,
 * IIS) serves it: `/admin;x/y` and `/admin./y` are `/admin/y` there. Null when it is the path.
 */
export function servedSpelling(path: string): string | null {
  const segments = path.split("/").slice(1).map((segment) => {
    const bare = withoutMatrix(segment);
    const trimmed = bare.replace(/(?:\.|%20|%2E| )+$/i, "");
    return trimmed === "" ? bare : trimmed;
  });
  const served = `/${segments.join("/")}`;
  return served === path ? null : served;
}

/**
 * The unmatched actions of a request no route describes, under both spellings of its path when a
 * server may serve it as another (`servedSpelling`): a rule about `DELETE /admin/*` applies to
 * `DELETE /admin;x/y`, and a policy must allow both spellings.
 */
export function unmatchedBoth(method: string, path: string, resourceOf: (path: string) => string): ActionDraft[] {
  const served = servedSpelling(path);
  const drafts = [unmatched(method, path, resourceOf(path))];
  if (served !== null) drafts.push({ ...unmatched(method, served, resourceOf(served)), detail: { method, path, servedAs: served, note: "the path as a server that drops ;parameters and trailing dots serves it" } });
  return drafts;
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
