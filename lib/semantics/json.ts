/**
 * A strict JSON parser for request bodies. `JSON.parse` silently keeps the last of duplicate
 * keys while other servers keep the first, so `{"query":"{a}","query":"mutation{…}"}` could be
 * judged on one value and executed on the other. This parser rejects duplicates, bounds nesting,
 * and builds null-prototype objects so keys like `__proto__` are plain data.
 *
 * Duplicates are not only exact ones: servers that match keys case-insensitively (Go's
 * encoding/json, the official Go MCP SDK, ASP.NET) read `Name` as `name`, and some fold further
 * (`paramſ` is `params` under Unicode case folding). So keys of one object that are equal once
 * folded are rejected too, and so are keys carrying control or invisible format characters
 * (`name\u0000`, which C-string readers truncate) and strings with lone surrogates (which each
 * decoder repairs differently). What remains, a lone variant (`{"Method": …}` where `method` is
 * expected), is caught where a key is read: see `property`.
 */

import { reject, type Rejection } from "@/lib/semantics/types";

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export class JsonError extends Error {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(message);
    this.name = "JsonError";
  }
}

const MAX_DEPTH = 128;

/**
 * The form of a key that every case-insensitive reader agrees on: compatibility-normalised
 * (fullwidth and composed forms), then upper- and lower-cased, which is coarser than Unicode
 * simple case folding (`ſ`→`s`, Kelvin sign→`k`, `ß`→`ss`, dotless `ı`→`i`).
 */
export function foldKey(key: string): string {
  return printableAscii(key) ? key.toLowerCase() : key.normalize("NFKC").toUpperCase().toLowerCase();
}

/** Most keys: nothing to normalise and nothing invisible, so the fast path is exact. */
function printableAscii(key: string): boolean {
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

/** Control (Cc) and format (Cf: zero-width, bidi, BOM) characters: never part of a real key. */
const INVISIBLE = /[\p{Cc}\p{Cf}]/u;

/** Folded key → actual key, for every object this parser built (lookups of variants are O(1)). */
const FOLDED = new WeakMap<object, Map<string, string>>();
const LITERALS: ReadonlyArray<[string, JsonValue]> = [
  ["true", true],
  ["false", false],
  ["null", null],
];
const ESCAPES: Readonly<Record<string, string>> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

export function parseStrictJson(text: string): JsonValue {
  let pos = 0;

  function fail(message: string): never {
    throw new JsonError(`${message} at position ${pos}`, pos);
  }
  const skipWs = (): void => {
    while (pos < text.length) {
      const c = text.charCodeAt(pos);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) pos++;
      else break;
    }
  };

  const parseString = (): string => {
    pos++; // opening quote
    let out = "";
    let start = pos;
    while (pos < text.length) {
      const c = text.charCodeAt(pos);
      if (c === 0x22) {
        out += text.slice(start, pos);
        pos++;
        return out;
      }
      if (c < 0x20) fail("control character in string");
      if (c === 0x5c) {
        out += text.slice(start, pos);
        const e = text[pos + 1];
        if (e === undefined) fail("unterminated escape");
        if (e === "u") {
          const hex = text.slice(pos + 2, pos + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail("invalid unicode escape");
          const unit = parseInt(hex, 16);
          if (unit >= 0xd800 && unit <= 0xdbff) {
            // A high surrogate must be followed by an escaped low one: a lone half is read
            // differently by every decoder (dropped, replaced with U+FFFD, kept).
            const low = /^\\u[dD][c-fC-F][0-9a-fA-F]{2}$/.test(text.slice(pos + 6, pos + 12)) ? parseInt(text.slice(pos + 8, pos + 12), 16) : -1;
            if (low < 0) fail("lone surrogate in string");
            out += String.fromCharCode(unit, low);
            pos += 12;
          } else {
            if (unit >= 0xdc00 && unit <= 0xdfff) fail("lone surrogate in string");
            out += String.fromCharCode(unit);
            pos += 6;
          }
        } else if (ESCAPES[e] !== undefined) {
          out += ESCAPES[e];
          pos += 2;
        } else {
          fail("invalid escape");
        }
        start = pos;
        continue;
      }
      pos++;
    }
    return fail("unterminated string");
  };

  const parseValue = (depth: number): JsonValue => {
    if (depth > MAX_DEPTH) fail("nesting too deep");
    skipWs();
    const c = text[pos];
    if (c === "{") return parseObject(depth);
    if (c === "[") return parseArray(depth);
    if (c === '"') return parseString();
    for (const [word, literal] of LITERALS) {
      if (text.startsWith(word, pos)) {
        pos += word.length;
        return literal;
      }
    }
    NUMBER.lastIndex = pos;
    const m = NUMBER.exec(text);
    if (m && m[0].length > 0) {
      pos += m[0].length;
      return Number(m[0]);
    }
    return fail("unexpected token");
  };

  const parseObject = (depth: number): JsonValue => {
    pos++;
    const obj = Object.create(null) as { [key: string]: JsonValue };
    const folded = new Map<string, string>();
    FOLDED.set(obj, folded);
    skipWs();
    if (text[pos] === "}") {
      pos++;
      return obj;
    }
    for (;;) {
      skipWs();
      if (text[pos] !== '"') fail("expected string key");
      const key = parseString();
      if (!printableAscii(key) && INVISIBLE.test(key)) fail(`key ${JSON.stringify(key)} contains a control or invisible character`);
      // Exact duplicates fold alike too: one lookup finds both.
      const fold = foldKey(key);
      const twin = folded.get(fold);
      if (twin === key) fail(`duplicate key ${JSON.stringify(key)}`);
      if (twin !== undefined) fail(`keys ${JSON.stringify(twin)} and ${JSON.stringify(key)} differ only in case or form, and some servers read them as one`);
      folded.set(fold, key);
      skipWs();
      if (text[pos] !== ":") fail("expected ':'");
      pos++;
      obj[key] = parseValue(depth + 1);
      skipWs();
      if (text[pos] === ",") {
        pos++;
        continue;
      }
      if (text[pos] === "}") {
        pos++;
        return obj;
      }
      fail("expected ',' or '}'");
    }
  };

  const parseArray = (depth: number): JsonValue => {
    pos++;
    const arr: JsonValue[] = [];
    skipWs();
    if (text[pos] === "]") {
      pos++;
      return arr;
    }
    for (;;) {
      arr.push(parseValue(depth + 1));
      skipWs();
      if (text[pos] === ",") {
        pos++;
        continue;
      }
      if (text[pos] === "]") {
        pos++;
        return arr;
      }
      fail("expected ',' or ']'");
    }
  };

  const value = parseValue(0);
  skipWs();
  if (pos !== text.length) fail("trailing characters");
  return value;
}

export function isJsonObject(value: unknown): value is { [key: string]: JsonValue } {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Reads `key` from an object the way a case-insensitive server would have to agree with:
 * `{ ok: true, value }` (undefined when absent), or `{ ok: false, variant }` when the object lacks
 * `key` but has a key equal to it once folded (`Method` for `method`), which such a server
 * would read as `key` while a case-sensitive one would not.
 */
export function property(obj: object, key: string): { ok: true; value: unknown } | { ok: false; variant: string } {
  if (Object.prototype.hasOwnProperty.call(obj, key)) return { ok: true, value: (obj as Record<string, unknown>)[key] };
  const fold = foldKey(key);
  const known = FOLDED.get(obj);
  const variant = known ? known.get(fold) : Object.keys(obj).find((k) => foldKey(k) === fold);
  return variant === undefined ? { ok: true, value: undefined } : { ok: false, variant };
}

/**
 * An integer this parser may have rounded: beyond 2^53 a JSON number is read as the nearest
 * double here (and by JavaScript and Go's `interface{}`), exactly by Python and by Go into an
 * `int64`, so `9007199254740993` is one resource to Bulkhead and another to such a server.
 * Where a number names a resource, it is refused rather than judged as a neighbour.
 */
export function isUnsafeInteger(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && !Number.isSafeInteger(value);
}

/** The refusal for such a number in a resource argument (`argument` names where it was). */
export function unsafeIntegerRejection(argument: string): Rejection {
  return reject(
    "unsafe_integer",
    `${argument} holds an integer beyond 2^53, which JavaScript and some servers round and others read exactly, so the resource it names cannot be known; send it as a string`,
  );
}
