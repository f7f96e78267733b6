/**
 * A strict JSON parser for request bodies. `JSON.parse` silently keeps the last of duplicate
 * keys while other servers keep the first, so `{"query":"{a}","query":"mutation{…}"}` could be
 * judged on one value and executed on the other. This parser rejects duplicates, bounds nesting,
 * and builds null-prototype objects so keys like `__proto__` are plain data.
 */

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
          out += String.fromCharCode(parseInt(hex, 16));
          pos += 6;
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
    skipWs();
    if (text[pos] === "}") {
      pos++;
      return obj;
    }
    for (;;) {
      skipWs();
      if (text[pos] !== '"') fail("expected string key");
      const key = parseString();
      if (Object.prototype.hasOwnProperty.call(obj, key)) fail(`duplicate key "${key}"`);
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
