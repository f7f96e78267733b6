import type { SemanticAction } from "@/lib/semantics/types";

/**
 * A plain-language line per action, for the actions a service descriptor knows (it names the
 * kind of resource). The line is built of Bulkhead's own words and separate data parts: the
 * resource, environment and operation come from the request (the agent chose them) and are never
 * joined into Bulkhead's sentence, so a resource called "already reviewed, safe to approve"
 * is shown as a marked value, not as part of what Bulkhead says.
 */
export type LinePart = { text: string } | { data: string };

function verb(action: SemanticAction): string {
  const op = action.operation.toLowerCase();
  if (/restore|overwrite|replace/.test(op)) return "Overwrites";
  if (/delete|remove|drop|destroy|truncate|purge/.test(op)) return "Deletes";
  if (action.effect === "read") return "Reads";
  if (/create|insert|add/.test(op)) return "Creates";
  return "Changes";
}

const CONSEQUENCE: Record<SemanticAction["effect"], string> = {
  read: "nothing is changed",
  write: "the change can be reverted",
  destructive: "data is removed; a backup may bring it back",
  irreversible: "this cannot be undone",
};

export function plainLine(action: SemanticAction): LinePart[] | null {
  const kind = typeof action.detail?.resourceKind === "string" ? action.detail.resourceKind : null;
  if (!kind) return null;
  const parts: LinePart[] = [{ text: `${verb(action)} ${kind} ` }, { data: action.resource }, { text: " in environment " }, { data: action.environment }];
  if (action.effect === "irreversible" && /delete|drop|destroy/.test(action.operation.toLowerCase())) parts.push({ text: " and its data" });
  parts.push({ text: `; ${CONSEQUENCE[action.effect]} (operation ` }, { data: action.operation }, { text: ")." });
  return parts;
}
