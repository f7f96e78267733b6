import type { SemanticAction } from "@/lib/semantics/types";

type Judged = Pick<SemanticAction, "service" | "environment" | "resource" | "operation" | "effect">;

const describe = (a: Judged) => `${a.service} ${a.environment} ${a.operation} ${JSON.stringify(a.resource)} (${a.effect})`;

/**
 * How the actions a request is classified into now differ from those it was held with (and a
 * person approved), or null when they are the same: service, environment, resource, operation and
 * effect of each, in order. The service registry and the environment inventory can change while a
 * request waits (a resource moved to production, a custom service redefined); the approval was
 * given for what the card said the request did, so a request that now does something else is not
 * released by it. The description names the first difference, for the refusal's reason.
 */
export function actionsChanged(held: readonly Judged[], now: readonly Judged[]): string | null {
  if (held.length !== now.length) return `it was held as ${held.length} action(s) and is now ${now.length}`;
  for (let i = 0; i < held.length; i++) {
    const a = held[i]!;
    const b = now[i]!;
    if (a.service !== b.service || a.environment !== b.environment || a.resource !== b.resource || a.operation !== b.operation || a.effect !== b.effect) {
      return `action ${i + 1} was ${describe(a)} and is now ${describe(b)}`;
    }
  }
  return null;
}
