import Link from "next/link";

/**
 * The links under a keyset-paged list (lib/db/list-page.ts): back to the first page once past it,
 * and on to the next while there is one. `base` is the list's path with its filters; the cursor is
 * added to it.
 */
export function ListPager({ base, filters, cursor, nextCursor, nextLabel, endLabel, param = "cursor" }: {
  base: string;
  /** The list's filters as they are in the address (kept on every link). */
  filters: Record<string, string | undefined>;
  /** The cursor this page was read from (absent: the first page). */
  cursor: string | undefined;
  nextCursor: string | null;
  nextLabel: string;
  /** Said on the last page, when there was more than one. */
  endLabel: string;
  /** The query parameter that carries the cursor (a page with more than one list names each). */
  param?: string;
}) {
  if (!cursor && !nextCursor) return null;
  const href = (extra: Record<string, string>) => {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries({ ...filters, ...extra })) if (v !== undefined && v !== "") params.set(k, v);
    const query = params.toString();
    return query ? `${base}?${query}` : base;
  };
  return (
    <nav aria-label="Pages" className="mt-4 flex gap-3 text-sm">
      {cursor ? (
        <Link className="text-brand-700 hover:underline" href={href({})}>
          First page
        </Link>
      ) : null}
      {nextCursor ? (
        <Link className="text-brand-700 hover:underline" href={href({ [param]: nextCursor })}>
          {nextLabel} →
        </Link>
      ) : (
        <span className="text-slate-500">{endLabel}</span>
      )}
    </nav>
  );
}
