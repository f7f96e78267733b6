/**
 * Path and query canonicalisation. The canonical path is what rules are evaluated against AND
 * what is forwarded, so every spelling that servers might resolve differently is rejected:
 * dot segments (literal or percent-encoded, also `..;` which Tomcat resolves, and `..%3B`), encoded "/" and
 * "\", encoded control characters, double encoding (`%25` before two hex digits), empty segments
 * ("//"), invalid escapes, and escaped bytes that are not UTF-8 (overlong `%C0%AE` is "." to a
 * lax decoder).
 *
 * Canonical form: percent-escapes of unreserved characters (A-Z a-z 0-9 - . _ ~) are decoded,
 * every other escape keeps its byte with upper-case hex, characters outside the path grammar are
 * percent-encoded as UTF-8. Matrix parameters (";a=b") are kept literally.
 */
import { reject, type Rejection } from "@/lib/semantics/types";

const HEX = "0123456789ABCDEF";

function isUnreserved(c: number): boolean {
  return (
    (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) ||
    c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e
  );
}

/** sub-delims, ":" and "@": legal in a path segment and kept as they are. */
const PATH_LITERAL = new Set("!$&'()*+,;=:@");

function hexValue(ch: string | undefined): number {
  if (ch === undefined) return -1;
  const v = parseInt(ch, 16);
  return Number.isNaN(v) || !/^[0-9a-fA-F]$/.test(ch) ? -1 : v;
}

function encodeByte(b: number): string {
  return `%${HEX[b >> 4]}${HEX[b & 15]}`;
}

function encodeChar(ch: string): string | null {
  try {
    return encodeURIComponent(ch).replace(/%[0-9a-f]{2}/gi, (m) => m.toUpperCase());
  } catch {
    return null; // lone surrogate
  }
}

const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Are the bytes of a canonical segment (ASCII and `%XX` escapes only) valid UTF-8? Overlong forms
 * (`%C0%AE` for ".", `%C0%AF` for "/", `%E0%80%AE`), encoded surrogates and stray bytes are
 * not: a server whose decoder is lax reads `%C0%AE%C0%AE` as "..", one that is strict refuses
 * it, another substitutes U+FFFD or reads Latin-1, so the path judged would not be the path run.
 */
function validUtf8(segment: string): boolean {
  const bytes: number[] = [];
  for (let i = 0; i < segment.length; i++) {
    if (segment[i] === "%") {
      bytes.push(parseInt(segment.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(segment.charCodeAt(i));
  }
  try {
    STRICT_UTF8.decode(Uint8Array.from(bytes));
    return true;
  } catch {
    return false;
  }
}

function canonicalSegment(raw: string): { ok: true; segment: string } | Rejection {
  let out = "";
  // An escaped byte outside ASCII: the segment's bytes must then be checked as UTF-8.
  let high = false;
  for (let i = 0; i < raw.length; ) {
    const ch = raw[i] as string;
    const code = raw.charCodeAt(i);
    if (ch === "%") {
      const hi = hexValue(raw[i + 1]);
      const lo = hexValue(raw[i + 2]);
      if (hi < 0 || lo < 0) return reject("invalid_percent_encoding", "invalid percent-encoding in path");
      const byte = hi * 16 + lo;
      if (byte === 0x2f) return reject("encoded_slash", "encoded slash (%2F) in path");
      if (byte === 0x5c) return reject("encoded_backslash", "encoded backslash (%5C) in path");
      if (byte < 0x20 || byte === 0x7f) return reject("control_character", "encoded control character in path");
      if (byte >= 0x80) high = true;
      out += isUnreserved(byte) ? String.fromCharCode(byte) : encodeByte(byte);
      i += 3;
      continue;
    }
    if (code < 0x20 || code === 0x7f) return reject("control_character", "control character in path");
    if (ch === "\\") return reject("backslash", "backslash in path");
    if (isUnreserved(code) || PATH_LITERAL.has(ch)) {
      out += ch;
      i += 1;
      continue;
    }
    const cp = raw.codePointAt(i) ?? code;
    const width = cp > 0xffff ? 2 : 1;
    const encoded = encodeChar(raw.slice(i, i + width));
    if (encoded === null) return reject("invalid_path", "path contains an invalid character");
    out += encoded;
    i += width;
  }
  // `%25` before two hex digits is an escape escaped: a server (or a gateway in front of it) that
  // decodes twice reads `%2576olumes` as `volumes`, `%252F` as `/`, `%252e%252e` as `..`. Looked
  // for in the canonical segment, where `%25%32%66` has become `%252f`.
  if (DOUBLE_ENCODED.test(out)) return reject("double_encoding", "double percent-encoding (%25 followed by an escape) in path");
  if (high && !validUtf8(out)) return reject("invalid_utf8", "percent-encoded bytes in the path that are not UTF-8 (an overlong or invalid sequence)");
  return { ok: true, segment: out };
}

const DOUBLE_ENCODED = /%25[0-9A-Fa-f]{2}/;

export function canonicalizePath(rawPath: string): { ok: true; path: string } | Rejection {
  if (rawPath === "") return { ok: true, path: "/" };
  if (!rawPath.startsWith("/")) return reject("invalid_path", "path must start with '/'");
  const parts = rawPath.split("/");
  const out: string[] = [""];
  for (let i = 1; i < parts.length; i++) {
    const raw = parts[i] as string;
    const last = i === parts.length - 1;
    if (raw === "" && !last) return reject("double_slash", "empty path segment ('//') in path");
    const result = canonicalSegment(raw);
    if (!result.ok) return result;
    // "..;x" resolves to ".." on servers that strip matrix parameters before normalising, and so
    // does "..%3Bx" once a server in front decodes it (nginx's proxy_pass with a URI passes the
    // decoded path on, and Tomcat behind it strips the parameter).
    // Only a segment that starts with "." can be one (the split is skipped for every other).
    const bare = result.segment.charCodeAt(0) === 0x2e ? result.segment.split(/;|%3B/)[0] : "";
    if (bare === "." || bare === "..") return reject("dot_segment", "dot segment ('.' or '..') in path");
    out.push(result.segment);
  }
  return { ok: true, path: out.join("/") };
}

const QUERY_ENCODE = new Set(['"', "<", ">", "`", "{", "}", "|", "^", "[", "]"]);

/** Query strings are kept raw except for invalid escapes (rejected) and unsafe characters (encoded). */
export function canonicalizeQuery(rawQuery: string): { ok: true; query: string } | Rejection {
  let out = "";
  for (let i = 0; i < rawQuery.length; ) {
    const ch = rawQuery[i] as string;
    const code = rawQuery.charCodeAt(i);
    if (ch === "%") {
      if (hexValue(rawQuery[i + 1]) < 0 || hexValue(rawQuery[i + 2]) < 0) {
        return reject("invalid_percent_encoding", "invalid percent-encoding in query");
      }
      out += rawQuery.slice(i, i + 3);
      i += 3;
      continue;
    }
    if (code < 0x20 || code === 0x7f) return reject("control_character", "control character in query");
    if (code < 0x80 && !QUERY_ENCODE.has(ch)) {
      out += ch;
      i += 1;
      continue;
    }
    const cp = rawQuery.codePointAt(i) ?? code;
    const width = cp > 0xffff ? 2 : 1;
    const encoded = encodeChar(rawQuery.slice(i, i + width));
    if (encoded === null) return reject("invalid_query", "query contains an invalid character");
    out += encoded;
    i += width;
  }
  return { ok: true, query: out };
}
