/**
 * YAML documents people type (a task's policy, a service descriptor, the inventory) are stored
 * with `\n` line ends, whoever sends them. A browser submits a textarea with `\r\n` (the HTML
 * form encoding), editors on Windows save files that way, and an old Mac file has bare `\r`:
 * YAML reads all three as one line break, so the document means the same, but the stored text
 * would not be. Kept as sent, a policy saved from the dashboard showed `\u000d` at every line end
 * in the task report (a carriage return is a control character, escaped wherever text is shown),
 * and the same policy saved from the dashboard and from the CLI differed on every line in the
 * report's version diff.
 */
export function normalizeLineEndings(text: string): string {
  return text.includes("\r") ? text.replace(/\r\n?/g, "\n") : text;
}
