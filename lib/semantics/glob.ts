/**
 * Glob patterns used by policy rules, inventories and descriptors. Deliberately tiny:
 * `*` matches any run of characters (including "/"), `?` exactly one (UTF-16 code unit),
 * everything else is literal and case-sensitive. No braces, classes or escapes, so a pattern
 * means what it shows.
 *
 * The values matched are agent-controlled (resources, operations, tool names), so matching must
 * never cost more than linear time in the value: a backtracking regular expression built from
 * `vol_*_*_*_prod` takes seconds on a 2 KB resource and stalls every agent behind it. Instead a
 * pattern is split at its stars into segments; the first and last are compared in place, and
 * each middle segment is found at its leftmost position with a bit-parallel (Shift-And) scan,
 * which never looks at a character twice. Taking the leftmost occurrence is always right:
 * a later one can only leave less room for the segments after it.
 * Cost: O(n × ⌈segment length / 32⌉) per middle segment, for a value of n code units.
 */

export type Matcher = (value: string) => boolean;

/** Counts the work a match did (characters looked at), so tests can bound it. */
export interface MatchStats {
  steps: number;
}

export function isGlob(pattern: string): boolean {
  return pattern.includes("*") || pattern.includes("?");
}

const ANY = 0x3f; // "?"

interface Segment {
  /** Code units of the segment; ANY stands for "?". */
  units: Uint16Array;
  /** Shift-And tables: one bit per position, per distinct code unit (plus the "?" positions). */
  masks: Map<number, Uint32Array>;
  wildcard: Uint32Array;
  words: number;
}

function segmentOf(text: string): Segment {
  const units = new Uint16Array(text.length);
  for (let i = 0; i < text.length; i++) units[i] = text.charCodeAt(i);
  const words = Math.max(1, Math.ceil(units.length / 32));
  const wildcard = new Uint32Array(words);
  for (let i = 0; i < units.length; i++) if (units[i] === ANY) wildcard[i >>> 5] = (wildcard[i >>> 5] as number) | (1 << (i & 31));
  const masks = new Map<number, Uint32Array>();
  for (let i = 0; i < units.length; i++) {
    const unit = units[i] as number;
    if (unit === ANY) continue;
    let mask = masks.get(unit);
    if (!mask) masks.set(unit, (mask = Uint32Array.from(wildcard)));
    mask[i >>> 5] = (mask[i >>> 5] as number) | (1 << (i & 31));
  }
  return { units, masks, wildcard, words };
}

/** Does `seg` match `value` exactly at `at`? */
function matchAt(seg: Segment, value: string, at: number, stats: MatchStats | undefined): boolean {
  const { units } = seg;
  for (let i = 0; i < units.length; i++) {
    if (stats) stats.steps++;
    const u = units[i] as number;
    if (u !== ANY && u !== value.charCodeAt(at + i)) return false;
  }
  return true;
}

/** Leftmost index >= from where `seg` ends before `limit`, or -1. One pass, no backtracking. */
function find(seg: Segment, value: string, from: number, limit: number, stats: MatchStats | undefined): number {
  const length = seg.units.length;
  if (length === 0) return from;
  const { words, masks, wildcard } = seg;
  const state = new Uint32Array(words);
  const lastWord = (length - 1) >>> 5;
  const lastBit = 1 << ((length - 1) & 31);
  for (let pos = from; pos < limit; pos++) {
    const mask = masks.get(value.charCodeAt(pos)) ?? wildcard;
    let carry = 1; // a match may start at every position
    for (let w = 0; w < words; w++) {
      if (stats) stats.steps++;
      const current = state[w] as number;
      state[w] = (((current << 1) | carry) & (mask[w] as number)) >>> 0;
      carry = current >>> 31;
    }
    if (((state[lastWord] as number) & lastBit) !== 0) return pos - length + 1;
  }
  return -1;
}

/** Compiles one pattern into a predicate that runs in time linear in the value. */
export function compileGlob(pattern: string): (value: string, stats?: MatchStats) => boolean {
  if (!isGlob(pattern)) return (value) => value === pattern;
  const parts = pattern.split("*");
  const segments = parts.map(segmentOf);
  const starred = parts.length > 1;
  const head = segments[0] as Segment;
  const tail = segments[segments.length - 1] as Segment;
  const middle = segments.slice(1, -1);
  const fixed = parts.reduce((sum, part) => sum + part.length, 0);

  return (value, stats) => {
    if (!starred) return value.length === head.units.length && matchAt(head, value, 0, stats);
    if (value.length < fixed) return false;
    const end = value.length - tail.units.length;
    if (!matchAt(head, value, 0, stats) || !matchAt(tail, value, end, stats)) return false;
    let pos = head.units.length;
    for (const seg of middle) {
      const at = find(seg, value, pos, end, stats);
      if (at < 0) return false;
      pos = at + seg.units.length;
    }
    return true;
  };
}

/**
 * Compiles a list of patterns into one predicate: exact patterns go into a Set (O(1)),
 * each glob into a linear-time matcher. An empty list matches nothing.
 */
export function compileGlobs(patterns: readonly string[], options: { caseInsensitive?: boolean } = {}): Matcher {
  const fold = options.caseInsensitive === true;
  const exact = new Set<string>();
  const globs: Array<(value: string) => boolean> = [];
  for (const raw of patterns) {
    const pattern = fold ? raw.toLowerCase() : raw;
    if (isGlob(pattern)) globs.push(compileGlob(pattern));
    else exact.add(pattern);
  }
  if (globs.length === 0) {
    return fold ? (value) => exact.has(value.toLowerCase()) : (value) => exact.has(value);
  }
  return (value) => {
    const v = fold ? value.toLowerCase() : value;
    if (exact.has(v)) return true;
    for (const glob of globs) if (glob(v)) return true;
    return false;
  };
}

export function globMatch(pattern: string, value: string): boolean {
  return isGlob(pattern) ? compileGlob(pattern)(value) : pattern === value;
}
