/**
 * Method overrides: the methods a framework may run instead of the request's own. Every override
 * found is classified next to the real method (the most severe wins); an override that cannot be
 * determined is refused, never skipped.
 *
 * - Headers `X-HTTP-Method-Override`, `X-HTTP-Method`, `X-Method-Override`, also spelled with
 *   underscores (CGI and PHP read `X_HTTP_METHOD_OVERRIDE` as the same variable).
 * - A `_method` parameter in the query or in a form body (Rails, Laravel, Symfony, Express's
 *   method-override), found after decoding, whatever the spelling of its name: escapes
 *   (`%5Fmethod`), case (`_METHOD`, read by case-insensitive form collections), and PHP's name
 *   mangling (leading spaces dropped, ` ` and `.` read as `_`, a NUL ending the name). `;`
 *   separates pairs too (older Rack and Python did so).
 * - A form, multipart or JSON body in any ASCII-compatible charset (the name and a method are
 *   ASCII there); another charset (UTF-16, UTF-7...) or a compressed body of those types is
 *   refused.
 * - A multipart/form-data part named `_method` (Rails, Laravel and Symfony read it), also in a
 *   multipart/mixed or multipart/related body (Rack parses those as form data as well); a
 *   multipart body that does not parse, or has no boundary, is refused.
 * - A top-level `_method` key of a body a server may read as JSON (`mayBeJsonBody`: a Content-Type
 *   that mentions "json" anywhere, as Laravel's `isJson()` reads `text/json` or
 *   `application/jsonp`, or a body that starts with `{` under any other type but multipart, as
 *   Express apps with `express.json({ type: () => true })` read it); a form body is read both ways.
 */
import { decodeLoose, mayBeJsonBody, MULTIPART_FORMS, notAsciiReadable, parseJsonText, parseMediaType, parseMultipart, readTextBody } from "@/lib/semantics/body";
import { isJsonObject } from "@/lib/semantics/json";
import { readField } from "@/lib/semantics/when";
import { reject, type CanonicalRequest, type Rejection } from "@/lib/semantics/types";

const OVERRIDE_HEADERS = new Set(["x-http-method-override", "x-http-method", "x-method-override"]);
const METHOD_TOKEN = /^[A-Za-z]+$/;
const latin1 = new TextDecoder("latin1");

type Found = { ok: true; values: string[] } | Rejection;

/** The request method plus any override a framework might apply instead. */
export function effectiveMethods(req: CanonicalRequest): string[] | Rejection {
  const methods = new Set([req.method]);
  for (const rawName of Object.keys(req.headers)) {
    const name = rawName.includes("_") ? rawName.replace(/_/g, "-") : rawName;
    if (!OVERRIDE_HEADERS.has(name)) continue;
    const value = (req.headers[rawName] as string).trim();
    if (!METHOD_TOKEN.test(value)) return reject("invalid_method_override", `invalid ${rawName} header`);
    methods.add(value.toUpperCase());
  }
  for (const found of [formOverrides(req.query, "query"), bodyOverrides(req)]) {
    if (!found.ok) return found;
    for (const value of found.values) methods.add(value);
  }
  return [...methods];
}

/** Is this (decoded) parameter name `_method` to some framework? `_method[...]` is refused. */
function overrideName(decoded: string): "yes" | "no" | "array" {
  let name = decoded.replace(/^ +/, "");
  const nul = name.indexOf("\0");
  if (nul >= 0) name = name.slice(0, nul);
  const bracket = name.indexOf("[");
  const base = (bracket >= 0 ? name.slice(0, bracket) : name).replace(/[ .]/g, "_").toLowerCase();
  if (base !== "_method") return "no";
  return bracket >= 0 ? "array" : "yes";
}

function checked(values: string[], where: string): Found {
  if (values.length > 1) return reject("invalid_method_override", `ambiguous _method parameter: more than one in the ${where}`);
  for (const value of values) {
    if (!METHOD_TOKEN.test(value.trim())) return reject("invalid_method_override", `invalid _method parameter in the ${where}`);
  }
  return { ok: true, values: values.map((v) => v.trim().toUpperCase()) };
}

function formOverrides(text: string, where: string): Found {
  const values: string[] = [];
  for (const pair of text.split(/[&;]/)) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    const kind = overrideName(decodeLoose(eq < 0 ? pair : pair.slice(0, eq)));
    if (kind === "no") continue;
    if (kind === "array") return reject("invalid_method_override", `_method given as an array in the ${where}`);
    values.push(decodeLoose(eq < 0 ? "" : pair.slice(eq + 1)));
  }
  return checked(values, where);
}

function bodyOverrides(req: CanonicalRequest): Found {
  const bytes = req.body;
  if (!bytes || bytes.length === 0) return { ok: true, values: [] };
  const media = parseMediaType(req.headers["content-type"]);
  // Rack reads "application/x-www-form-urlencoded, text/plain" as a form: a type that does not parse could be one.
  if ("ok" in media) return reject("invalid_method_override", `${media.reason}: a _method override in the body cannot be ruled out`);
  const form = media.type === "" || media.type === "application/x-www-form-urlencoded";
  // Rack parses multipart/mixed and multipart/related bodies as form data too
  // (PARSEABLE_DATA_MEDIA_TYPES: as multipart with a boundary, as a urlencoded form without one),
  // and Rack::MethodOverride reads `_method` there: read like multipart/form-data, refused
  // without a boundary.
  const multipart = MULTIPART_FORMS.has(media.type);
  const json = mayBeJsonBody(req.headers, media.type, bytes);
  if (!form && !multipart && !json) return { ok: true, values: [] };
  // The charset is checked for JSON too: Express's JSON parser decodes `charset=utf-16le`, where
  // `_method` is not the ASCII bytes the quick look below searches for.
  const unreadable = notAsciiReadable(req, media.params, "look for a _method override");
  if (unreadable) return unreadable;
  // A form body that starts with `{` is read both ways: as a form by Rack and PHP, as JSON by an
  // app that parses every body as JSON.
  const asJson = json ? jsonOverride(req) : ({ ok: true, values: [] } as Found);
  if (!asJson.ok || (!form && !multipart)) return asJson;
  const text = latin1.decode(bytes);
  const asForm = form ? formOverrides(text, "form body") : multipartOverrides(text, media.params["boundary"]);
  if (!asForm.ok || asJson.values.length === 0) return asForm;
  return { ok: true, values: [...asJson.values, ...asForm.values] };
}

function jsonOverride(req: CanonicalRequest): Found {
  // Only a body that mentions "method" (or escapes characters) can carry the key, if its bytes
  // are ASCII's: one that starts with a byte-order mark or holds a NUL (UTF-16, UTF-32) is read
  // whole, and refused as the text it is not.
  const bytes = req.body ?? new Uint8Array();
  if ((bytes.length === 0 || bytes[0]! < 0x80) && !bytes.includes(0) && !/method|\\u/i.test(latin1.decode(bytes))) return { ok: true, values: [] };
  const text = readTextBody(req);
  if (!text.ok) return text;
  const parsed = parseJsonText(text.text);
  if (!parsed.ok) return parsed;
  if (!isJsonObject(parsed.value)) return { ok: true, values: [] };
  const field = readField(parsed.value, "_method");
  if (!field.ok) return field;
  if (field.value === undefined) return { ok: true, values: [] };
  if (typeof field.value !== "string") return reject("invalid_method_override", "invalid _method key in the JSON body");
  return checked([field.value], "JSON body");
}

function multipartOverrides(text: string, boundary: string | undefined): Found {
  const parsed = parseMultipart(text, boundary);
  if (!parsed.ok) return reject("invalid_multipart", `multipart body could not be parsed (${parsed.why}): a _method part cannot be ruled out`);
  const values: string[] = [];
  for (const part of parsed.parts) {
    const kinds = part.names.map(overrideName);
    if (kinds.includes("array")) return reject("invalid_method_override", "_method given as an array in the multipart body");
    if (!kinds.includes("yes")) continue;
    if (part.transfer !== "" && part.transfer !== "7bit" && part.transfer !== "8bit" && part.transfer !== "binary") {
      return reject("invalid_method_override", `_method part with Content-Transfer-Encoding "${part.transfer}"`);
    }
    values.push(part.value);
  }
  return checked(values, "multipart body");
}
