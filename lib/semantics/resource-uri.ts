/**
 * Resource URIs (MCP `resources/read` and friends, URI-valued tool arguments) in one canonical
 * spelling, so a rule about `file:///etc/*` also covers `file:/etc/passwd`, `FILE://localhost/etc/passwd`,
 * `file:///tmp/../etc/passwd` and `file:///%65tc/passwd`, which a server reads as the same file.
 *
 * RFC 3986 normalisation (scheme and host case, percent-encoding, dot segments) plus what the
 * common schemes define: `file:` with an empty or `localhost` authority is `file:///path` and its
 * repeated slashes collapse (a file system reads `//etc//passwd` as `/etc/passwd`); http(s)/ws(s)
 * drop their default port. What different readers would resolve differently is refused rather
 * than guessed: encoded separators and control characters (`%2F`, `%5C`, `%00`), backslashes,
 * fragments, whitespace, relative references.
 */
import { reject, type Rejection } from "@/lib/semantics/types";

const MAX_URI_LENGTH = 8192;
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;
const UNRESERVED = /[A-Za-z0-9\-._~]/;
const DEFAULT_PORTS: Readonly<Record<string, string>> = { http: "80", https: "443", ws: "80", wss: "443" };
/** Characters left as they are in a path or query (RFC 3986 pchar plus "/" and "?"). */
const KEEP = /[A-Za-z0-9\-._~!$&'()*+,;=:@/?]/;

type Result = { ok: true; uri: string } | Rejection;

const invalid = (why: string): Rejection => reject("invalid_resource_uri", `resource URI ${why}`);

/** Percent-encoding in one form: unreserved characters decoded, other escapes upper-case, the rest encoded. */
function normalizeEscapes(text: string, inPath: boolean): { ok: true; text: string } | Rejection {
  let out = "";
  let i = 0;
  while (i < text.length) {
    const ch = String.fromCodePoint(text.codePointAt(i) as number);
    if (ch === "%") {
      const hex = text.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return invalid("has an invalid percent-escape");
      const code = parseInt(hex, 16);
      if (code < 0x20 || code === 0x7f) return invalid("encodes a control character");
      if (inPath && (code === 0x2f || code === 0x5c)) return invalid("encodes a path separator (%2F or %5C), which servers decode differently");
      const decoded = String.fromCharCode(code);
      out += UNRESERVED.test(decoded) ? decoded : `%${hex.toUpperCase()}`;
      i += 3;
      continue;
    }
    // Lone surrogates cannot be encoded as UTF-8: refused, not repaired.
    if (/\p{Cs}/u.test(ch)) return invalid("is not valid Unicode");
    out += KEEP.test(ch) ? ch : encodeURIComponent(ch);
    i += ch.length;
  }
  return { ok: true, text: out };
}

/** RFC 3986 section 5.2.4, on a path that starts with "/". */
function removeDotSegments(path: string): string {
  const out: string[] = [];
  const segments = path.split("/").slice(1);
  segments.forEach((segment, i) => {
    const last = i === segments.length - 1;
    if (segment === ".") {
      if (last) out.push("");
    } else if (segment === "..") {
      out.pop();
      if (last) out.push("");
    } else {
      out.push(segment);
    }
  });
  return `/${out.join("/")}`;
}

export function normalizeResourceUri(raw: string): Result {
  if (raw.length > MAX_URI_LENGTH) return invalid("is too long");
  if (/[\p{Cc}\p{Cf}\s]/u.test(raw)) return invalid("contains whitespace, control or invisible characters");
  if (raw.includes("\\")) return invalid("contains a backslash, which some servers read as a separator");
  if (raw.includes("#")) return invalid("has a fragment");
  const scheme = SCHEME.exec(raw);
  if (!scheme) return invalid("is not absolute (it has no scheme)");
  const name = (scheme[1] as string).toLowerCase();
  let rest = raw.slice(scheme[0].length);

  let authority: string | null = null;
  if (rest.startsWith("//")) {
    const end = rest.slice(2).search(/[/?]/);
    authority = end < 0 ? rest.slice(2) : rest.slice(2, 2 + end);
    rest = end < 0 ? "" : rest.slice(2 + end);
  }
  const queryAt = rest.indexOf("?");
  const rawPath = queryAt < 0 ? rest : rest.slice(0, queryAt);
  const rawQuery = queryAt < 0 ? null : rest.slice(queryAt + 1);

  if (authority !== null) {
    if (authority.includes("%")) return invalid("has a percent-escape in its authority");
    const at = authority.lastIndexOf("@");
    const userinfo = at < 0 ? "" : authority.slice(0, at + 1);
    let host = (at < 0 ? authority : authority.slice(at + 1)).toLowerCase();
    const port = /:(\d*)$/.exec(host);
    if (port && !host.endsWith("]") && (port[1] === "" || port[1] === DEFAULT_PORTS[name])) host = host.slice(0, port.index);
    authority = userinfo + host;
  }

  const path = normalizeEscapes(rawPath, true);
  if (!path.ok) return path;
  const query = rawQuery === null ? null : normalizeEscapes(rawQuery, false);
  if (query && !query.ok) return query;
  let canonicalPath = path.text;

  if (name === "file") {
    // A file is read by its path: Node's fileURLToPath and Python's url2pathname(urlparse(u).path)
    // ignore the query (`file:///etc/passwd?x` is /etc/passwd), and Python the host too. So the
    // query is dropped, this machine's names and addresses are no host, and any other host is
    // refused (read as a local path by some servers, as a network share by others).
    if (authority !== null && /^(?:localhost|127(?:\.\d{1,3}){3}|\[::1\]|\[0*:(?:0*:){0,6}0*1\])$/.test(authority)) authority = "";
    if (authority !== null && authority !== "") return invalid("is a file URI naming a host, which servers read either as this machine's path or as a network share");
    if (!canonicalPath.startsWith("/")) return invalid("is a file URI without an absolute path");
    canonicalPath = removeDotSegments(canonicalPath.replace(/\/{2,}/g, "/"));
    return { ok: true, uri: `file://${canonicalPath}` };
  } else if (name in DEFAULT_PORTS) {
    if (!authority) return invalid(`is a ${name} URI without a host`);
    canonicalPath = canonicalPath === "" ? "/" : canonicalPath.startsWith("/") ? removeDotSegments(canonicalPath) : canonicalPath;
  } else if (canonicalPath.startsWith("/")) {
    canonicalPath = removeDotSegments(canonicalPath);
  }

  const uri = `${name}:${authority !== null ? `//${authority}` : ""}${canonicalPath}${query ? `?${query.text}` : ""}`;
  return { ok: true, uri };
}

/** Values that look like URIs (`scheme:/…`) in tool arguments get the same treatment. */
export function looksLikeHierarchicalUri(value: string): boolean {
  return /^[A-Za-z][A-Za-z0-9+.-]*:\//.test(value);
}
