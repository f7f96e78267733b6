/** "Did you mean …?": the nearest known name by edit distance, for error messages. */

const MAX_LENGTH = 200;

/** Levenshtein distance; inputs are policy text (bounded here, never agent input). */
export function distance(a: string, b: string): number {
  if (a.length > MAX_LENGTH || b.length > MAX_LENGTH) return Math.max(a.length, b.length);
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j] as number;
      row[j] = Math.min((row[j] as number) + 1, (row[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length] as number;
}

/**
 * The known name nearest to `name` (compared case-insensitively) within `max` edits, or null.
 * Ties go to the first in `known`.
 */
export function closest(name: string, known: Iterable<string>, max: number): string | null {
  const lower = name.toLowerCase();
  let best: string | null = null;
  let bestDistance = max + 1;
  for (const candidate of known) {
    const d = distance(lower, candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** ` (did you mean "x"?)` or "". */
export function hint(name: string, known: Iterable<string>, max = 3): string {
  const best = closest(name, known, max);
  return best === null ? "" : ` (did you mean ${JSON.stringify(best)}?)`;
}
