/**
 * Reading request bodies the way an upstream would, or refusing to. Anything we cannot read
 * exactly (compressed bodies, non-UTF-8 charsets, duplicate form fields, invalid escapes)
 * is rejected: a classifier that guessed could be shown one thing while the server runs another.
 */
import { parseStrictJson, JsonError, type JsonValue } from "@/lib/semantics/json";
import { reject, type CanonicalRequest, type Rejection } from "@/lib/semantics/types";

export interface MediaType {
  /** Lower-case `type/subtype`, or "" when the header is absent. */
  type: string;
  params: Record<string, string>;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export function parseMediaType(header: string | undefined): MediaType | Rejection {
  if (header === undefined || header.trim() === "") return { type: "", params: {} };
  const [head = "", ...rest] = header.split(";");
  const type = head.trim().toLowerCase();
  const [main, sub, extra] = type.split("/");
  if (!main || !sub || extra !== undefined || !TOKEN.test(main) || !TOKEN.test(sub)) {
    return reject("invalid_content_type", `malformed Content-Type "${header}"`);
  }
  const params: Record<string, string> = {};
  for (const part of rest) {
    if (part.trim() === "") continue;
    const eq = part.indexOf("=");
    if (eq < 0) return reject("invalid_content_type", `malformed Content-Type parameter "${part.trim()}"`);
    const name = part.slice(0, eq).trim().toLowerCase();
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    if (Object.prototype.hasOwnProperty.call(params, name)) {
      return reject("invalid_content_type", `duplicate Content-Type parameter "${name}"`);
    }
    params[name] = value;
  }
  return { type, params };
}

/**
 * The JSON types Bulkhead accepts as a protocol's own body (MCP, GraphQL). Deciding whether a
 * server might *also* read a body as JSON is `mayBeJsonBody`'s job, which says yes far more often.
 */
export function isJsonMediaType(type: string): boolean {
  return type === "application/json" || (type.startsWith("application/") && type.endsWith("+json"));
}

/** Charsets in which every ASCII byte means its ASCII character (a form's or multipart body's structure, `_method`). */
const ASCII_COMPATIBLE = /^(?:utf-?8|us-ascii|ascii|iso[-_]?8859-\d{1,2}|latin-?[1-9]|l[1-9]|windows-125\d|cp125\d)$/;

/**
 * Why a body cannot be read byte for byte as ASCII structure (a form, a multipart body, `_method`
 * in JSON), or null when it can: a Content-Encoding other than identity, or a charset in which an
 * ASCII byte is not its ASCII character. `doing` completes "cannot … in a body".
 */
export function notAsciiReadable(req: { headers: Record<string, string> }, params: Record<string, string>, doing: string): Rejection | null {
  const encoding = (req.headers["content-encoding"] ?? "").trim().toLowerCase();
  if (encoding !== "" && encoding !== "identity") return reject("unsupported_content_encoding", `cannot ${doing} in a body with Content-Encoding "${encoding}"`);
  const charset = params["charset"]?.toLowerCase();
  if (charset !== undefined && !ASCII_COMPATIBLE.test(charset)) return reject("unsupported_charset", `cannot ${doing} in a body in charset "${charset}"`);
  return null;
}

/** Multipart types whose parts some framework reads as form fields (Rack: form-data, mixed, related). */
export const MULTIPART_FORMS: ReadonlySet<string> = new Set(["multipart/form-data", "multipart/mixed", "multipart/related"]);

const JSON_LABEL = /json/i;

/**
 * Might a server read this body as JSON (and take `_method`, or a route's parameters, from it)?
 * The one rule for every place that looks for fields in a body (method overrides, body
 * parameters; `when` conditions read every body but multipart as JSON, which includes these):
 *
 * - its Content-Type mentions "json" anywhere, in any case, parameters included: Laravel's
 *   `Request::isJson()` is "the header contains `/json` or `+json`" (`text/json`,
 *   `application/jsonp`, `text/plain+json`, even `text/plain; x=/json`), Express's
 *   `express.json({ type })` is often given such types (`application/x-json`, `*\/json`);
 * - or, whatever its Content-Type (none, `text/plain`, a form), its first character other than
 *   JSON whitespace is `{`: Express apps parse every body as JSON with `express.json({ type:
 *   () => true })` or `type: "*\/*"`, Flask's `get_json(force=True)` ignores the type;
 * - or its bytes are not the text they will be read as: a Content-Encoding other than identity
 *   (body-parser inflates gzip, deflate and br before parsing), or a first byte (after JSON
 *   whitespace) that begins a byte-order mark or a UTF-16/32 text (`EF BB BF`, `FF FE`, `FE FF`,
 *   `00 7B`): Python's `json.loads` and body-parser read those as JSON too. Such a body is then
 *   refused by whoever reads it (`unsupported_content_encoding`, `invalid_body`), as it cannot be
 *   looked into.
 *
 * Multipart bodies are read as multipart, never as JSON. A body this says yes to is parsed as
 * JSON and refused when it does not parse (a duplicate key is read as the last one by PHP and
 * JavaScript): answering yes too often only refuses or judges more.
 */
export function mayBeJsonBody(headers: Readonly<Record<string, string>>, mediaType: string, body: Uint8Array): boolean {
  if (MULTIPART_FORMS.has(mediaType)) return false;
  const contentType = headers["content-type"];
  if (contentType !== undefined && JSON_LABEL.test(contentType)) return true;
  const encoding = headers["content-encoding"];
  if (encoding !== undefined && !/^[\s,]*(?:identity[\s,]*)*$/i.test(encoding)) return true;
  let nul = false;
  for (let i = 0; i < body.length; i++) {
    const byte = body[i]!;
    if (byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d) continue;
    // UTF-16/32 text: its NULs between JSON's bytes (`00 7B`, `00 20 00 7B`, `7B 00` is `{` already).
    if (byte === 0x00) {
      nul = true;
      continue;
    }
    if (byte === 0x7b) return true; // "{"
    if (nul || i > 0) return false;
    // A byte-order mark: UTF-8's (EF BB BF), UTF-16's and UTF-32's (FF FE, FE FF).
    return (byte === 0xef && body[1] === 0xbb && body[2] === 0xbf) || (byte === 0xff && body[1] === 0xfe) || (byte === 0xfe && body[1] === 0xff);
  }
  return false;
}

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The body as UTF-8 text plus its media type, or a rejection explaining why it cannot be read. */
export function readTextBody(req: CanonicalRequest): { ok: true; text: string; media: MediaType } | Rejection {
  const encoding = (req.headers["content-encoding"] ?? "").trim().toLowerCase();
  if (encoding !== "" && encoding !== "identity") {
    return reject("unsupported_content_encoding", `cannot inspect a body with Content-Encoding "${encoding}"`);
  }
  const media = parseMediaType(req.headers["content-type"]);
  if ("ok" in media) return media;
  const charset = media.params["charset"]?.toLowerCase();
  if (charset !== undefined && charset !== "utf-8" && charset !== "utf8") {
    return reject("unsupported_charset", `cannot inspect a body in charset "${charset}"`);
  }
  const bytes = req.body ?? new Uint8Array();
  // A byte-order mark would be stripped by some parsers and kept by others.
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    return reject("invalid_body", "body starts with a byte-order mark");
  }
  try {
    return { ok: true, text: decoder.decode(bytes), media };
  } catch {
    return reject("invalid_body", "body is not valid UTF-8");
  }
}

export function parseJsonText(text: string): { ok: true; value: JsonValue } | Rejection {
  try {
    return { ok: true, value: parseStrictJson(text) };
  } catch (error) {
    const message = error instanceof JsonError ? error.message : "invalid JSON";
    return reject("invalid_json", `body is not valid JSON: ${message}`);
  }
}

const PERCENT_OK = /^(?:[^%]|%[0-9A-Fa-f]{2})*$/;

/**
 * A form or query parameter's name as PHP registers it (`php_register_variable_ex`): cut at a
 * NUL, leading spaces dropped, and in the name before its first `[` every space and `.` read as
 * `_`. So `force%00`, `%20query` and `delete.data` are `force`, `query` and `delete_data` to PHP
 * (and Laravel). Null when that is the name as written.
 */
export function phpParameterName(name: string): string | null {
  let out = name;
  const nul = out.indexOf("\0");
  if (nul >= 0) out = out.slice(0, nul);
  out = out.replace(/^ +/, "");
  const bracket = out.indexOf("[");
  const base = bracket < 0 ? out : out.slice(0, bracket);
  out = base.replace(/[ .]/g, "_") + (bracket < 0 ? "" : out.slice(bracket));
  return out === name || out === "" ? null : out;
}

/**
 * Whether a body is read as a form by servers that parse by Content-Type: labelled one, or a POST
 * labelled nothing at all, which Rack (Rails, Sinatra) parses as a form (`form_data?`): there
 * `{"sha":"a","x":"&force=true&"}` sent without a Content-Type carries force=true.
 */
export function readAsForm(method: string, mediaType: string): boolean {
  return mediaType === "application/x-www-form-urlencoded" || (mediaType === "" && method.toUpperCase() === "POST");
}

/**
 * `application/x-www-form-urlencoded` (also used for query strings). Duplicate names are
 * rejected because servers disagree on which one wins (first, last, or an array).
 */
export function parseFormStrict(text: string): { ok: true; fields: Map<string, string> } | Rejection {
  const fields = new Map<string, string>();
  if (text === "") return { ok: true, fields };
  for (const pair of text.split("&")) {
    if (pair === "") continue;
    if (!PERCENT_OK.test(pair)) return reject("invalid_percent_encoding", "invalid percent-encoding in form data");
    const eq = pair.indexOf("=");
    const rawName = eq < 0 ? pair : pair.slice(0, eq);
    const rawValue = eq < 0 ? "" : pair.slice(eq + 1);
    let name: string;
    let value: string;
    try {
      name = decodeURIComponent(rawName.replace(/\+/g, " "));
      value = decodeURIComponent(rawValue.replace(/\+/g, " "));
    } catch {
      return reject("invalid_percent_encoding", "form data is not valid UTF-8 after decoding");
    }
    // PHP's reading of the name is a name too (`query%00=` and `%20query=` are `query` there):
    // given beside the name it reads as, the request is ambiguous; alone, the value is judged
    // under that name as well.
    const php = phpParameterName(name);
    for (const reading of php === null ? [name] : [name, php]) {
      if (fields.has(reading)) {
        const how = reading === name ? "" : ` (as "${name.slice(0, 40)}" too, which PHP reads as "${reading.slice(0, 40)}")`;
        return reject("ambiguous_parameter", `parameter "${reading.slice(0, 40)}" appears more than once${how}`);
      }
      fields.set(reading, value);
    }
  }
  return { ok: true, fields };
}

/**
 * The parameter names of a query string as servers read them: pairs split at `&` and at `;`
 * (Rack 2, Django before 3.2 and old Python split there), `+` and escapes decoded (an undecodable
 * name is read as written), leading spaces and anything from a NUL on dropped (PHP), lower-cased
 * (case-insensitive parameter collections). `base` is the name before any `[` or `.`, which
 * nested-parameter parsers (Rails, PHP, Express's `qs`) read as the top-level key
 * (`input[force]`, `input.force`).
 */
export function queryParameterNames(query: string): Array<{ name: string; base: string }> {
  const out: Array<{ name: string; base: string }> = [];
  if (query === "") return out;
  for (const pair of query.split(/[&;]/)) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    const raw = (eq < 0 ? pair : pair.slice(0, eq)).replace(/\+/g, " ");
    let name = raw;
    try {
      name = decodeURIComponent(raw);
    } catch {
      // Read as written.
    }
    const nul = name.indexOf("\0");
    if (nul >= 0) name = name.slice(0, nul);
    name = name.trim().toLowerCase();
    const cut = name.search(/[[.]/);
    out.push({ name, base: (cut >= 0 ? name.slice(0, cut) : name).trim() });
    // And as PHP reads it: inner spaces and dots before the first `[` are `_` there
    // (`disk.id=` and `disk%20id=` are `disk_id`).
    const php = phpParameterName(name);
    if (php !== null) {
      const bracket = php.indexOf("[");
      out.push({ name: php, base: bracket >= 0 ? php.slice(0, bracket) : php });
    }
  }
  return out;
}

/** `+` and `%XX` decoded byte by byte, never failing (what a lenient form parser reads). */
function decodeFormPart(text: string): string {
  const spaced = text.replace(/\+/g, " ");
  try {
    return decodeURIComponent(spaced);
  } catch {
    return spaced.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  }
}

/**
 * A body read as `application/x-www-form-urlencoded`: pairs split at `&` and `;`, `a[b]` and
 * `a.b` nested as Rails, PHP and `qs` nest them (a name in another case is caught where the
 * condition reads it, as in JSON). A name given twice is refused: servers keep the first, the
 * last or both.
 */
export function formReading(text: string): { ok: true; value: Record<string, unknown> } | Rejection {
  const root: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const pair of text.split(/[&;]/)) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    const written = decodeFormPart(eq < 0 ? pair : pair.slice(0, eq));
    const value = decodeFormPart(eq < 0 ? "" : pair.slice(eq + 1));
    const name = written.trim();
    const set = place(root, name, value, name.split(/\[|\]\[|\]|\./).filter((k) => k !== ""));
    if (set) return set;
    // PHP's reading of the name (`force%00`, `delete.data`, `delete+data`) is where the value is
    // there: it is placed under that name too, so a condition or a resource parameter sees it, and
    // a name given twice that way is refused like any other.
    const php = phpParameterName(written);
    if (php !== null && php !== name) {
      const again = place(root, php, value, php.split(/\[|\]\[|\]/).filter((k) => k !== ""));
      if (again) return again;
    }
  }
  return { ok: true, value: root };
}

/**
 * Every parameter name of a form, as written (decoded leniently, trimmed) and as PHP reads it,
 * never failing: for telling whether a body some server reads as a form names a parameter.
 */
export function formNames(text: string): string[] {
  const names: string[] = [];
  for (const pair of text.split(/[&;]/)) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    const written = decodeFormPart(eq < 0 ? pair : pair.slice(0, eq));
    names.push(written.trim());
    const php = phpParameterName(written);
    if (php !== null) names.push(php);
  }
  return names;
}

/** Sets `value` at `keys` in `root`; a rejection when that place is taken (the name given twice). */
function place(root: Record<string, unknown>, name: string, value: string, keys: string[]): Rejection | null {
  if (keys.length === 0) return null;
  let node = root;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (typeof next === "object" && next !== null) node = next as Record<string, unknown>;
    else if (next === undefined) node = node[key] = Object.create(null) as Record<string, unknown>;
    else return reject("ambiguous_parameter", `form parameter "${name.slice(0, 40)}" is given twice`);
  }
  const last = keys[keys.length - 1] as string;
  if (last in node) return reject("ambiguous_parameter", `form parameter "${name.slice(0, 40)}" is given twice`);
  node[last] = value;
  return null;
}

/** `+` and `%XX` decoded byte by byte: exact for ASCII, never fails. */
export function decodeLoose(text: string): string {
  if (!text.includes("%") && !text.includes("+")) return text;
  return text.replace(/\+/g, " ").replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

const NAME_PARAM = /(?:^|;)\s*name(\*?)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)/gi;

/** The spellings a server may take a Content-Disposition `name` for (quoted, unescaped, `name*=`, decoded). */
function partNames(disposition: string): string[] {
  const names: string[] = [];
  for (const m of disposition.matchAll(NAME_PARAM)) {
    let value = (m[2] as string).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) {
      value = value.slice(1, -1);
      names.push(value, value.replace(/\\(.)/g, "$1"));
    } else {
      names.push(value);
    }
    if (m[1] === "*") names.push(value.slice(value.lastIndexOf("'") + 1)); // RFC 5987: charset'lang'value
  }
  return [...new Set(names.flatMap((n) => [n, decodeLoose(n)]))];
}

export interface MultipartPart {
  /** Every spelling of the part's name a server may read (see `partNames`). */
  names: string[];
  /** Content-Transfer-Encoding, lower-cased ("" when absent). */
  transfer: string;
  /** The part's content, one character per byte as the text given to `parseMultipart`. */
  value: string;
}

/**
 * A multipart body's parts, from its text read one character per byte (Latin-1): a preamble
 * before the first delimiter is skipped, lines may end in CRLF or bare LF, names are read in
 * every spelling a server may take them for. `why` says what did not parse: callers refuse
 * such a body, since what it carries cannot be ruled out.
 */
export function parseMultipart(text: string, boundary: string | undefined): { ok: true; parts: MultipartPart[] } | { ok: false; why: string } {
  if (!boundary || boundary.length > 200) return { ok: false, why: "no boundary" };
  const delimiter = `--${boundary}`;
  let pos = text.indexOf(delimiter);
  if (pos < 0) return { ok: false, why: "no delimiter" };
  const parts: MultipartPart[] = [];
  for (;;) {
    pos += delimiter.length;
    if (text.startsWith("--", pos)) return { ok: true, parts };
    const lineEnd = text.indexOf("\n", pos);
    if (lineEnd < 0) return { ok: false, why: "no closing delimiter" };
    const next = text.indexOf(`\n${delimiter}`, lineEnd);
    if (next < 0) return { ok: false, why: "no closing delimiter" };
    const part = text.slice(lineEnd + 1, next);
    const crlf = part.indexOf("\r\n\r\n");
    const lf = part.indexOf("\n\n");
    const [headEnd, gap] = crlf >= 0 && (lf < 0 || crlf < lf) ? [crlf, 4] : lf >= 0 ? [lf, 2] : [part.length, 0];
    let names: string[] = [];
    let transfer = "";
    for (const line of part.slice(0, headEnd).split(/\r?\n/)) {
      const colon = line.indexOf(":");
      const header = line.slice(0, colon).trim().toLowerCase();
      if (header === "content-disposition") names = names.concat(partNames(line.slice(colon + 1)));
      if (header === "content-transfer-encoding") transfer = line.slice(colon + 1).trim().toLowerCase();
    }
    parts.push({ names, transfer, value: part.slice(headEnd + gap).replace(/\r$/, "") });
    pos = next + 1;
  }
}
