/**
 * Paths folded for MATCHING only. The canonical path is what is forwarded, byte for byte; but
 * many servers route spellings of one path to the same handler: Express (by default), Rails,
 * Django with APPEND_SLASH and Spring ignore a trailing slash, ASP.NET and Express compare case
 * insensitively (ASP.NET with .NET case mapping, so `volumeſ` is `volumes`), Tomcat and Jetty
 * drop `;parameters` of a segment. The folded form of a path is what such a server would see:
 * per segment, the `;…` part removed, the case folded (a segment with escapes is decoded first
 * and folded like a JSON key: NFKC, upper then lower), trailing dots and spaces dropped (IIS), and empty segments (a trailing slash, a
 * segment that was only `;…`) dropped. Classifiers use it to find what a folding server would
 * dispatch to, never to decide that a spelling is harmless.
 */
import { foldKey } from "@/lib/semantics/json";

export interface FoldedPath {
  /** Folded segments, for comparing with folded literals. */
  keys: string[];
  /**
   * The same segments as the agent sent them, minus `;…` and trailing dots and spaces (what
   * parameters capture): IIS drops those before routing, so there `DELETE /volumes/prod.` or
   * `/volumes/prod%20` reaches `{id}` as `prod`. A decimal integer is read as a number is
   * (`0123` and `+123` are `123`).
   */
  values: string[];
}

/**
 * A segment without its matrix parameters: from its first `;`, or its first `%3B`, which is a `;`
 * to Tomcat once a server in front has decoded the path (nginx's proxy_pass with a URI passes it
 * on decoded): `/admin%3Bx/y` is `/admin/y` there.
 */
export function withoutMatrix(segment: string): string {
  const semi = segment.indexOf(";");
  const escaped = segment.includes("%") ? segment.search(/%3B/i) : -1;
  const cut = semi < 0 ? escaped : escaped < 0 ? semi : Math.min(semi, escaped);
  return cut < 0 ? segment : segment.slice(0, cut);
}

/**
 * The folded form of one segment (or literal) that has no `;…` part. Trailing dots and spaces are
 * dropped too: IIS routes `/volumes/v1/restore.` and `…/restore%20` to `/volumes/v1/restore`.
 */
export function foldSegment(segment: string): string {
  return withoutTrailingDotsAndSpaces(foldCase(segment));
}

function foldCase(segment: string): string {
  if (!segment.includes("%")) return segment.toLowerCase();
  let decoded: string;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    return segment.toLowerCase(); // not UTF-8: compared as written, like most servers do
  }
  return foldKey(decoded);
}

function withoutTrailingDotsAndSpaces(key: string): string {
  if (!key.endsWith(".") && !key.endsWith(" ")) return key;
  const trimmed = key.replace(/[. ]+$/, "");
  return trimmed === "" ? key : trimmed;
}

/** The same on a segment as sent (a space is `%20` there, a dot `.` or `%2E`), never to nothing. */
function withoutTrailingEscapedDotsAndSpaces(value: string): string {
  const trimmed = value.replace(/(?:\.|%20|%2E)+$/i, "");
  return trimmed === "" ? value : trimmed;
}

/**
 * A value that is an integer as a server that parses the parameter as one reads it, as that
 * integer in plain decimal; otherwise the value itself. Rails' `to_i`, `parseInt`, Spring's
 * `Long` and ASP.NET's `int` read `0123` and `+123` as 123, so `DELETE /repositories/0123`
 * deletes repository 123. Coercing readers take more spellings: Python's `int()` and pydantic
 * `1_23`, `" 123 "` and any Unicode decimal digits (`１２３`); JavaScript's `Number()` (zod's
 * coerce) `0x7b`, `0o173`, `0b1111011` and `1.23e2`, `123.0`. Callers judge both readings.
 */
export function asNumberReads(value: string): string {
  const m = /^\+?0*(\d+)$/.exec(value);
  if (m) return m[1] === value ? value : (m[1] as string).replace(/^0+(?=\d)/, "");
  // Only what could be a number is looked at further (most identifiers hold a letter a number cannot).
  if (value.length > 96 || !MAYBE_NUMBER.test(value)) return value;
  const n = integerReading(value);
  return n === null ? value : n;
}

/** Digits (any script), signs, the radix prefixes' and exponent's letters, `_`, `.`, white space: nothing else. */
const MAYBE_NUMBER = /^[\s+\p{Nd}_.xXoObBeEa-fA-F-]*\p{Nd}[\s+\p{Nd}_.xXoObBeEa-fA-F-]*$/u;
const MAX_EXPONENT = 40;

function integerReading(raw: string): string | null {
  let text = raw.trim();
  if (/[^\x00-\x7f]/.test(text)) {
    let ascii = "";
    for (const c of text) {
      const d = unicodeDigit(c);
      ascii += d === null ? c : String(d);
    }
    text = ascii;
  }
  if (text.startsWith("+")) text = text.slice(1);
  let n: bigint | null = null;
  if (/^\d+(?:_\d+)*$/.test(text)) n = BigInt(text.replace(/_/g, ""));
  else if (/^0[xX](?:_?[0-9a-fA-F])+$/.test(text)) n = BigInt(`0x${text.slice(2).replace(/_/g, "")}`);
  else if (/^0[oO](?:_?[0-7])+$/.test(text)) n = BigInt(`0o${text.slice(2).replace(/_/g, "")}`);
  else if (/^0[bB](?:_?[01])+$/.test(text)) n = BigInt(`0b${text.slice(2).replace(/_/g, "")}`);
  else {
    const d = /^(\d*)\.?(\d*)(?:[eE]([+-]?\d{1,6}))?$/.exec(text);
    if (!d || (d[1] === "" && d[2] === "") || (!text.includes(".") && d[3] === undefined)) return null;
    const fraction = d[2] ?? "";
    const exponent = Number(d[3] ?? "0") - fraction.length;
    const digits = BigInt(`${d[1] ?? ""}${fraction}` || "0");
    if (exponent >= 0) {
      if (exponent > MAX_EXPONENT) return null;
      n = digits * 10n ** BigInt(exponent);
    } else {
      if (-exponent > MAX_EXPONENT + fraction.length) return null;
      const scale = 10n ** BigInt(-exponent);
      if (digits % scale !== 0n) return null;
      n = digits / scale;
    }
  }
  return n === null ? null : n.toString();
}

/** Each Unicode decimal digit's value (`\p{Nd}` comes in runs of ten, zero first), built on first need. */
let digitValues: Map<number, number> | null = null;
function unicodeDigit(c: string): number | null {
  const cp = c.codePointAt(0)!;
  if (cp >= 0x30 && cp <= 0x39) return cp - 0x30;
  if (cp < 0x80) return null;
  if (digitValues === null) {
    digitValues = new Map();
    const nd = /\p{Nd}/u;
    let run = 0;
    for (let code = 0x80; code <= 0x1fbff; code++) {
      if (nd.test(String.fromCodePoint(code))) {
        digitValues.set(code, run % 10);
        run++;
      } else run = 0;
    }
  }
  return digitValues.get(cp) ?? null;
}

export function foldPath(path: string): FoldedPath {
  const parts = path.split("/");
  const keys: string[] = [];
  const values: string[] = [];
  for (let i = 1; i < parts.length; i++) {
    const value = withoutMatrix(parts[i] as string);
    if (value === "") continue;
    values.push(asNumberReads(withoutTrailingEscapedDotsAndSpaces(value)));
    keys.push(foldSegment(value));
  }
  return { keys, values };
}

/** A format suffix on a path's last segment (`.json`, `.xml`): Rails routes `/graphql.json` to `/graphql`. */
const FORMAT_SUFFIX = /\.[a-z0-9]{1,10}$/;

/**
 * The folded reading with a format suffix dropped from its last segment (`transfer.json` read as
 * `transfer`), or null when the last segment has none (or is nothing but one). Rails routes
 * `/volumes/v1/restore.json` to the `restore` action; a REST classifier compares this reading
 * with routes whose last part is a literal only, since a parameter already takes `v1.json` whole.
 */
export function withoutFormatSuffix(folded: FoldedPath): FoldedPath | null {
  const last = folded.keys.length - 1;
  if (last < 0) return null;
  const key = folded.keys[last]!;
  if (!FORMAT_SUFFIX.test(key)) return null;
  const stripped = key.replace(FORMAT_SUFFIX, "");
  const value = folded.values[last]!;
  const dot = value.lastIndexOf(".");
  if (stripped === "" || stripped.endsWith(".")) return null;
  // Only a literal is compared with the last segment in this reading, never a parameter, so its
  // value matters only when the suffix was spelled with an escape the key decoded (no "." in it).
  return { keys: [...folded.keys.slice(0, last), stripped], values: [...folded.values.slice(0, last), dot > 0 ? value.slice(0, dot) : stripped] };
}

/**
 * "/" plus the folded segments, a format suffix on the last one dropped: equal for every spelling
 * a folding server routes to one endpoint. Used for protocol endpoints (`/graphql`, `/v1/sql`),
 * which are refused in any spelling but the declared one. REST routes read a suffix only where a
 * route's last part is a literal (`withoutFormatSuffix`): a dotted name such as `report.pdf` or
 * `next.js` in a parameter is a resource, and `{id}` takes `v1.json` whole.
 */
export function pathKey(path: string): string {
  const keys = foldPath(path).keys;
  const last = keys.length - 1;
  if (last >= 0 && FORMAT_SUFFIX.test(keys[last]!)) {
    const stripped = keys[last]!.replace(FORMAT_SUFFIX, "");
    if (stripped !== "") keys[last] = stripped;
  }
  return `/${keys.join("/")}`;
}

const pathSets = new WeakMap<readonly string[], ReadonlySet<string>>();

/** The folded keys of a descriptor's endpoint `paths`, computed once per descriptor list. */
export function foldedPathSet(paths: readonly string[]): ReadonlySet<string> {
  let set = pathSets.get(paths);
  if (!set) pathSets.set(paths, (set = new Set(paths.map(pathKey))));
  return set;
}
