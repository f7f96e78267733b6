/**
 * The environment inventory: which resources (Railway environment and volume IDs, GitHub
 * repositories, database names) and which hosts belong to which environment. Anything the
 * inventory does not know is production, and so is anything it knows ambiguously: an action
 * that touches a staging ID and a production ID, or two different non-production tags.
 */
import { apiIssueSentence, withoutLooserBounds } from "@/lib/http/form-errors";
import { readYaml } from "@/lib/semantics/yaml-read";
import { z } from "zod";
import { compileGlobs, type Matcher } from "@/lib/semantics/glob";
import { UNKNOWN_ENVIRONMENT } from "@/lib/semantics/types";

/**
 * An environment's name, as a task's scope and a credential's binding write it: letters, digits,
 * ".", "_" and "-". Any text was accepted here ("staging eu", "*", a NUL, a direction override
 * that showed as "staging"), and then meant something else, or nothing, in a scope or a binding.
 */
export const environmentNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, "an environment name is 1 to 64 letters, digits, \".\", \"_\" and \"-\", starting with a letter or digit, as a task's scope and a credential's binding write it");

export const inventoryEntrySchema = z.strictObject({
  environment: environmentNameSchema,
  /** Limit the entry to one service id; omitted means any service. */
  service: z.string().min(1).optional(),
  /** Resource identifiers or glob patterns, matched case-insensitively. */
  resources: z.array(z.string().min(1)).default([]),
  /** Host names or glob patterns ("*.staging.example.com"). */
  hosts: z.array(z.string().min(1)).default([]),
});

export const inventorySchema = z.strictObject({ entries: z.array(inventoryEntrySchema).default([]) });

export type InventoryEntryInput = z.input<typeof inventoryEntrySchema>;

interface CompiledEntry {
  environment: string;
  service: string | undefined;
  /** The resources as written (case-sensitive), and in any case (a variant of a listed one). */
  resource: Matcher | null;
  resourceAnyCase: Matcher | null;
  host: Matcher | null;
}

export interface Inventory {
  readonly entries: readonly CompiledEntry[];
}

export function createInventory(entries: readonly InventoryEntryInput[] = []): Inventory {
  const compiled = entries.map((raw) => {
    const e = inventoryEntrySchema.parse(raw);
    return {
      environment: e.environment,
      service: e.service,
      resource: e.resources.length ? compileGlobs(e.resources) : null,
      resourceAnyCase: e.resources.length ? compileGlobs(e.resources, { caseInsensitive: true }) : null,
      host: e.hosts.length ? compileGlobs(e.hosts, { caseInsensitive: true }) : null,
    };
  });
  return { entries: compiled };
}

export const emptyInventory: Inventory = { entries: [] };

export interface EnvironmentQuery {
  service: string;
  host: string;
  /** Identifiers found in the action (IDs, repo names, database names). */
  keys: readonly string[];
  /** The descriptor's fixed environment, if it has one. */
  fixed?: string | undefined;
  /**
   * The spellings of the identifier the action acts on (its resource, also read trimmed), when
   * its protocol names it in the request (a REST path parameter, a GraphQL argument, an MCP
   * argument). One of them, or the host, must be in the inventory: an identifier beside it (a
   * project, an environment, any other argument the agent adds) can make the answer production
   * by disagreeing, but never vouches for a resource the inventory does not know.
   */
  resource?: readonly string[] | undefined;
  /**
   * The service names resources without regard to case (a REST descriptor's `caseInsensitive`).
   * Elsewhere an identifier that matches an entry only in another case (`STG1` beside a listed
   * `stg1`) is another resource, unknown to the inventory: it never places an action, and as an
   * identifier it counts as production (it can only make the answer production, never staging).
   */
  caseInsensitive?: boolean | undefined;
}

export function resolveEnvironment(inventory: Inventory, query: EnvironmentQuery): string {
  if (query.fixed !== undefined) return query.fixed;
  const found = new Set<string>();
  // Whether the host or the action's own resource is in the inventory (see `resource`).
  let placed = query.resource === undefined;
  for (const entry of inventory.entries) {
    if (entry.service !== undefined && entry.service !== query.service) continue;
    if (entry.host?.(query.host)) {
      found.add(entry.environment);
      placed = true;
    }
    if (entry.resource) {
      const exact = query.caseInsensitive ? entry.resourceAnyCase! : entry.resource;
      for (const key of query.keys) {
        if (exact(key)) found.add(entry.environment);
        else if (entry.resourceAnyCase!(key)) found.add(UNKNOWN_ENVIRONMENT);
      }
      if (!placed && query.resource?.some((spelling) => exact(spelling))) {
        found.add(entry.environment);
        placed = true;
      }
    }
  }
  if (!placed) return UNKNOWN_ENVIRONMENT;
  if (found.size === 1) return [...found][0] as string;
  // Nothing known, or conflicting answers: assume the most sensitive environment.
  return UNKNOWN_ENVIRONMENT;
}

/** Loads an inventory from YAML: `entries: [ { environment, service?, resources?, hosts? } ]`. */
export function parseInventoryYaml(text: string): { ok: true; inventory: Inventory } | { ok: false; errors: string[] } {
  const read = readYaml(text, "inventory");
  if (!read.ok) return read;
  const parsed = inventorySchema.safeParse(read.value ?? {});
  if (!parsed.success) {
    return { ok: false, errors: withoutLooserBounds(parsed.error.issues).map((i) => `${i.path.join(".") || "inventory"}: ${apiIssueSentence(i)}`) };
  }
  return { ok: true, inventory: createInventory(parsed.data.entries) };
}
