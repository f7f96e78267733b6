import { parseDocument } from "yaml";

/**
 * A YAML document (a service descriptor, the inventory, a services file) as plain data, or what
 * is wrong with it. Duplicate keys are errors; aliases expand to at most 100 nodes. Turning the
 * document into data throws for what parsing let through: an alias "bomb" (a few hundred bytes
 * that expand to millions of nodes: "Excessive alias count") or nesting deeper than the stack.
 * Those are refusals of the text, as a syntax error is, never an exception for the caller.
 */
export function readYaml(text: string, what: string): { ok: true; value: unknown } | { ok: false; errors: string[] } {
  try {
    const doc = parseDocument(text, { uniqueKeys: true });
    if (doc.errors.length > 0) return { ok: false, errors: doc.errors.map((e) => e.message) };
    return { ok: true, value: doc.toJS({ maxAliasCount: 100 }) as unknown };
  } catch (error) {
    const reason = error instanceof RangeError ? "it nests too deeply" : error instanceof Error ? error.message : "unknown error";
    return { ok: false, errors: [`${what}: the YAML could not be read: ${reason}`] };
  }
}
