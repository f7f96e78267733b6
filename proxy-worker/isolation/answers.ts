/**
 * What the sandbox resolver told each sandbox: name -> addresses, kept for a while after the
 * answer's TTL (clients cache and reuse connections), bounded per sandbox. The sandbox listener
 * asks it whether the name a connection presents (Host or SNI) agrees with the address the
 * connection was actually dialled at.
 */
const KEEP_MS = 10 * 60 * 1000;
const MAX_NAMES = 4096;

interface Answer {
  addresses: Set<string>;
  until: number;
}

export class ResolverMemory {
  private readonly bySandbox = new Map<string, Map<string, Answer>>();

  constructor(private readonly keepMs = KEEP_MS) {}

  remember(sandboxId: string, name: string, addresses: readonly string[], ttlMs: number, now = Date.now()): void {
    let names = this.bySandbox.get(sandboxId);
    if (!names) {
      names = new Map();
      this.bySandbox.set(sandboxId, names);
    }
    const until = now + Math.max(ttlMs, this.keepMs);
    const previous = names.get(name);
    names.delete(name);
    const merged = new Set(previous && previous.until > now ? previous.addresses : []);
    for (const a of addresses) merged.add(a);
    names.set(name, { addresses: merged, until });
    if (names.size > MAX_NAMES) {
      const oldest = names.keys().next().value;
      if (oldest !== undefined) names.delete(oldest);
    }
  }

  /** True when this sandbox was told that `name` is at `address`, and that is still remembered. */
  agrees(sandboxId: string, name: string, address: string, now = Date.now()): boolean {
    const answer = this.bySandbox.get(sandboxId)?.get(name);
    return answer !== undefined && answer.until > now && answer.addresses.has(address);
  }

  /** Names this sandbox was given for `address` (raw TCP has no name of its own). */
  namesFor(sandboxId: string, address: string, now = Date.now()): string[] {
    const out: string[] = [];
    for (const [name, answer] of this.bySandbox.get(sandboxId) ?? []) if (answer.until > now && answer.addresses.has(address)) out.push(name);
    return out;
  }

  /** Drops what was remembered for sandboxes that no longer exist. */
  retain(live: ReadonlySet<string>): void {
    for (const id of this.bySandbox.keys()) if (!live.has(id)) this.bySandbox.delete(id);
  }
}
