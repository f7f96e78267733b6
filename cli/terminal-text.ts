import { visible } from "@/lib/audit/view";

/**
 * What the CLI prints may hold text an agent chose (an operation or resource from a request, a
 * SQL table name, an exported event) or that reached Bulkhead from outside. On a terminal, ESC
 * and the one-byte CSI start sequences that move the cursor, clear lines, recolour, retitle the
 * window or rewrite what was printed above; CR returns to the line's start so what follows
 * overwrites it; bidirectional and invisible characters reorder or hide text. Every line the
 * CLI prints goes through here: such characters become `\uXXXX` escapes, line feeds and tabs
 * stay. JSON output stays JSON with the same values (the characters can only stand inside its
 * strings, where `\uXXXX` means the same character).
 */
export function terminalLine(line: string): string {
  return visible(line, { keepLines: true, utf16: true });
}

/** The same for a file's text shown on a terminal (an export to standard output): CRLF line ends stay. */
export function terminalText(text: string): string {
  return text.split("\r\n").map(terminalLine).join("\r\n");
}

/**
 * A field printed inside one line of a listing (a task's purpose, a resource a request named):
 * its line feeds and tabs too become `\uXXXX`, so that a value cannot end its row and print
 * what looks like another (a purpose "x\n<id>  active  deploy-bot  [railway:production:write]").
 */
export function oneLine(field: string): string {
  return field.replace(/[\n\t\v\f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
