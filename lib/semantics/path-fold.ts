/**
 * Paths folded for MATCHING only. The canonical path is what is forwarded, byte for byte; but
 * many servers route spellings of one path to the same handler: Express (by default), Rails,
 * Django with APPEND_SLASH and Spring ignore a trailing slash, ASP.NET and Express compare case
 * insensitively (ASP.NET with .NET case mapping, so `volumeſ` is `volumes`), Tomcat and Jetty
 * drop `;parameters` of a segment. The folded form of a path is what such a server would see:
 * per segment, the `;…` part removed, the case folded (a segment with escapes is decoded first
 * and folded like a JSON key: NFKC, upper then lower), and empty segments (a trailing slash, a
 * segment that was only `;…`) dropped. Classifiers use it to find what a folding server would
 * dispatch to, never to decide that a spelling is harmless.
 */
import { foldKey } from "@/lib/semantics/json";

export interface FoldedPath {
  /** Folded segments, for comparing with folded literals. */
  keys: string[];
  /** The same segments as the agent sent them, minus `;…` (what parameters capture). */
  values: string[];
}

export function withoutMatrix(segment: string): string {
  const semi = segment.indexOf(";");
  return semi < 0 ? segment : segment.slice(0, semi);
}

/** The folded form of one segment (or literal) that has no `;…` part. */
export function foldSegment(segment: string): string {
  if (!segment.includes("%")) return segment.toLowerCase();
  let decoded: string;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    return segment.toLowerCase(); // not UTF-8: compared as written, like most servers do
  }
  return foldKey(decoded);
}

export function foldPath(path: string): FoldedPath {
  const parts = path.split("/");
  const keys: string[] = [];
  const values: string[] = [];
  for (let i = 1; i < parts.length; i++) {
    const value = withoutMatrix(parts[i] as string);
    if (value === "") continue;
    values.push(value);
    keys.push(foldSegment(value));
  }
  return { keys, values };
}

/** A format suffix on a path's last segment (`.json`, `.xml`): Rails routes `/graphql.json` to `/graphql`. */
const FORMAT_SUFFIX = /\.[a-z0-9]{1,10}$/;

/**
 * "/" plus the folded segments, a format suffix on the last one dropped: equal for every spelling
 * a folding server routes to one endpoint. Used for protocol endpoints (`/graphql`, `/v1/sql`),
 * which are refused in any spelling but the declared one; REST routes keep the suffix (a dotted
 * resource name such as `report.pdf` is a resource, and `{id}` already takes `v1.json` whole).
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
