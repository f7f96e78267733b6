/**
 * Glob patterns used by policy rules, inventories and descriptors. Deliberately tiny:
 * `*` matches any run of characters (including "/"), `?` exactly one, everything else is
 * literal and case-sensitive. No braces, classes or escapes, so a pattern means what it shows.
 */

export type Matcher = (value: string) => boolean;

export function isGlob(pattern: string): boolean {
  return pattern.includes("*") || pattern.includes("?");
}

export function globToRegExp(pattern: string, flags = ""): RegExp {
  let source = "^";
  for (const ch of pattern) {
    if (ch === "*") source += "[\\s\\S]*";
    else if (ch === "?") source += "[\\s\\S]";
    else source += ch.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&");
  }
  // Collapse runs of "*" so patterns like "a***b" cannot cause catastrophic backtracking.
  source = source.replace(/(?:\[\\s\\S\]\*)+/g, "[\\s\\S]*");
  return new RegExp(`${source}$`, flags);
}

/**
 * Compiles a list of patterns into one predicate: exact patterns go into a Set (O(1)),
 * the rest into one alternation. An empty list matches nothing.
 */
export function compileGlobs(patterns: readonly string[], options: { caseInsensitive?: boolean } = {}): Matcher {
  const fold = options.caseInsensitive === true;
  const exact = new Set<string>();
  const globs: string[] = [];
  for (const raw of patterns) {
    const pattern = fold ? raw.toLowerCase() : raw;
    if (isGlob(pattern)) globs.push(pattern);
    else exact.add(pattern);
  }
  if (globs.length === 0) {
    return fold ? (value) => exact.has(value.toLowerCase()) : (value) => exact.has(value);
  }
  const regexps = globs.map((g) => globToRegExp(g));
  return (value) => {
    const v = fold ? value.toLowerCase() : value;
    if (exact.has(v)) return true;
    for (const re of regexps) if (re.test(v)) return true;
    return false;
  };
}

export function globMatch(pattern: string, value: string): boolean {
  return isGlob(pattern) ? globToRegExp(pattern).test(value) : pattern === value;
}
