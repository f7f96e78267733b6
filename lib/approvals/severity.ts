import { EFFECTS, effectRank, type Effect } from "@/lib/semantics/types";

/**
 * The agent chooses how many actions a request has and in what order, so a card, a list row or a
 * notification that shows them in request order (or only the first few) can be made to open with
 * ten harmless reads and keep the one irreversible action below the fold or past the cut. Every
 * place that shows a request's actions orders them most severe first (request order within an
 * effect) and says how many there are of each effect, in Bulkhead's words.
 */
export function mostSevereFirst<T extends { effect: Effect | string }>(actions: readonly T[]): T[] {
  const rank = (e: string) => (EFFECTS.includes(e as Effect) ? effectRank(e as Effect) : 4); // unknown: first
  return actions
    .map((action, index) => ({ action, index }))
    .sort((a, b) => rank(b.action.effect) - rank(a.action.effect) || a.index - b.index)
    .map((x) => x.action);
}

/** "1 irreversible, 10 read": the count of each effect present, most severe first. */
export function effectSummary(actions: ReadonlyArray<{ effect: Effect | string }>): string {
  const counts = new Map<string, number>();
  for (const a of mostSevereFirst(actions)) counts.set(a.effect, (counts.get(a.effect) ?? 0) + 1);
  return [...counts].map(([effect, n]) => `${n} ${effect}`).join(", ");
}
