import { LineCounter, parseDocument, type YAMLError } from "yaml";

/**
 * A YAML syntax error as one line a person can act on. The library's own words are kept where
 * they say what is wrong ("Map keys must be unique"), but never its advice to programmers
 * ("please use YAML.parseAllDocuments()"), nor its multi-line excerpt of the text: a command says
 * an error on one line, and the caller names the line.
 */
export function yamlErrorMessage(error: YAMLError): string {
  if (error.code === "MULTIPLE_DOCS") return "a second YAML document starts here (after a `---` line); the file must hold exactly one";
  return error.message.split("\n")[0]?.trim() || error.code;
}

/** What the library throws while turning a parsed document into data, as a sentence. */
export function yamlReadFailure(error: unknown): string {
  if (error instanceof RangeError) return "it nests too deeply";
  const message = error instanceof Error ? error.message : "unknown error";
  const alias = /^Unresolved alias[^:]*: (.*)$/.exec(message);
  if (alias) return `the alias *${alias[1]} names no anchor (&${alias[1]}) set before it`;
  return message.split("\n")[0] ?? message;
}

/**
 * A YAML document (a service descriptor, the inventory, a services file) as plain data, or what
 * is wrong with it. Duplicate keys are errors; aliases expand to at most 100 nodes. Turning the
 * document into data throws for what parsing let through: an alias "bomb" (a few hundred bytes
 * that expand to millions of nodes: "Excessive alias count") or nesting deeper than the stack.
 * Those are refusals of the text, as a syntax error is, never an exception for the caller.
 * Each error is one line, starting with the line of the text it is on.
 */
export function readYaml(text: string, what: string): { ok: true; value: unknown } | { ok: false; errors: string[] } {
  try {
    const lines = new LineCounter();
    const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false, lineCounter: lines });
    if (doc.errors.length > 0) return { ok: false, errors: doc.errors.map((e) => `line ${lines.linePos(e.pos[0]).line}: ${yamlErrorMessage(e)}`) };
    // A tag the reader does not know (`!!js/function "x"`, `!custom x`) was dropped with a warning
    // and its value read as plain text: refused, so what is saved is what was written.
    const unknownTags = doc.warnings.filter((w) => w.code === "TAG_RESOLVE_FAILED");
    if (unknownTags.length > 0) return { ok: false, errors: unknownTags.map((w) => `line ${lines.linePos(w.pos[0]).line}: ${yamlErrorMessage(w)}; write the value without a tag`) };
    return { ok: true, value: doc.toJS({ maxAliasCount: 100 }) as unknown };
  } catch (error) {
    return { ok: false, errors: [`${what}: the YAML could not be read: ${yamlReadFailure(error)}`] };
  }
}
