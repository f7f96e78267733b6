import { isScalar, LineCounter, parseDocument, visit, type Document, type YAMLError } from "yaml";

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
    const sameKeys = keysAlikeAsData(doc, lines);
    if (sameKeys.length > 0) return { ok: false, errors: sameKeys.map((e) => `line ${e.line}: ${e.message}`) };
    return { ok: true, value: doc.toJS({ maxAliasCount: 100 }) as unknown };
  } catch (error) {
    return { ok: false, errors: [`${what}: the YAML could not be read: ${yamlReadFailure(error)}`] };
  }
}

/**
 * Keys of one mapping that YAML tells apart but the data does not: `123` and `"123"`, `true` and
 * `"true"` (YAML's own duplicate check compares nodes, and turning the document into data makes
 * both one key, the last winning). Such a mapping is refused: a persisted query or a `when`
 * condition could otherwise be written twice, the reviewer reading the first.
 */
export function keysAlikeAsData(doc: Document, lines: LineCounter): Array<{ line: number; message: string }> {
  const found: Array<{ line: number; message: string }> = [];
  visit(doc, {
    Map(_, map) {
      const seen = new Map<string, string>();
      for (const pair of map.items) {
        const key = pair.key;
        if (!isScalar(key)) continue;
        const asData = String(key.value);
        const written = typeof key.value === "string" ? JSON.stringify(key.value) : String(key.value);
        const earlier = seen.get(asData);
        if (earlier !== undefined) {
          const offset = key.range?.[0] ?? 0;
          found.push({ line: lines.linePos(offset).line, message: `the key ${JSON.stringify(asData)} appears twice in one mapping (written ${earlier} and ${written}), which read as the same key` });
        } else seen.set(asData, written);
      }
    },
  });
  return found;
}