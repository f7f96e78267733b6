/**
 * How many live approval streams (`GET /api/v1/approvals/events`) may be open at once. Each open
 * stream asks PostgreSQL for the pending count every second, so without a bound one signed-in
 * user or one API key, whatever its role, could open thousands and load the dashboard's database
 * for everyone. The dashboard itself opens one per tab.
 */
import type { Actor } from "@/lib/auth/actor";

export const STREAMS_PER_ACTOR = 8;
export const STREAMS_IN_ALL = 512;

export class StreamSlots {
  private readonly open = new Map<string, number>();
  private total = 0;

  constructor(
    readonly perActor = STREAMS_PER_ACTOR,
    readonly inAll = STREAMS_IN_ALL,
  ) {}

  /**
   * A slot for `key`'s next stream, or why there is none. The returned release may be called
   * any number of times; only the first frees the slot.
   */
  acquire(key: string): { release: () => void } | { refused: "actor" | "all" } {
    const mine = this.open.get(key) ?? 0;
    if (mine >= this.perActor) return { refused: "actor" };
    if (this.total >= this.inAll) return { refused: "all" };
    this.open.set(key, mine + 1);
    this.total++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.total--;
        const left = (this.open.get(key) ?? 1) - 1;
        if (left <= 0) this.open.delete(key);
        else this.open.set(key, left);
      },
    };
  }

  /** Streams open now (for `key`, or in all). */
  count(key?: string): number {
    return key === undefined ? this.total : (this.open.get(key) ?? 0);
  }
}

/** Whose streams these are: the person (every session and tab of theirs together) or the API key. */
export function streamOwner(actor: Actor): string {
  if (actor.kind === "user") return `user:${actor.userId}`;
  if (actor.kind === "api_key") return `api_key:${actor.apiKeyId}`;
  return `system:${actor.label}`;
}
