import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { terminalText } from "@/cli/terminal-text";

/** Runs the real `bulkhead` command (the compiled CLI, as an operator runs it). */
function bulkhead(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.resolve("bin/bulkhead.mjs"), ...args], { env: { PATH: process.env.PATH, HOME: cwd, BULKHEAD_DATA_DIR: path.join(cwd, "data") } as unknown as NodeJS.ProcessEnv, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

// Terminal controls (ESC, the one-byte CSI, CR, the rest of C0 and C1 but LF and tab), bidi
// controls and invisible characters: none may reach the operator's terminal as they are.
const OBEYED = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u00ad\u200b-\u200f\u202a-\u202e\u2066-\u2069\u{e0000}-\u{e007f}]/u;

/**
 * Everything the CLI prints may carry text an agent chose: here a SQL table name (a quoted
 * identifier may hold anything) that clears the line, returns to its start and prints a green
 * "SELECT only, safe" over the DROP, then turns the rest around. `policy explain` is what an
 * operator runs on a request an agent made.
 */
describe("the CLI never hands agent-chosen terminal controls to the terminal", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "bulkhead-terminal-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const table = "inv\u001b[2K\r\u001b[32mSELECT only, safe\u009b0m\u202e\u200b\u{e0041}";
  const file = (name: string, text: string) => {
    writeFileSync(path.join(dir, name), text);
    return path.join(dir, name);
  };
  const args = () => [
    "policy",
    "explain",
    "--offline",
    "--services",
    file("services.yaml", 'services:\n  - id: pg-http\n    hosts: [sql.example.com]\n    protocol: sql-http\n    sql: { paths: ["/sql"], queryField: "query" }\n'),
    "--policy",
    file("policy.yaml", "rules:\n  - id: reads\n    service: pg-http\n    effects: [read]\n"),
    "--request",
    "POST https://sql.example.com/sql",
    "--body",
    file("body.json", JSON.stringify({ query: `DROP TABLE "${table}"` })),
  ];

  it("prints the table name's controls as escapes, on the line that says what the statement does", async () => {
    const r = await bulkhead(args(), dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(OBEYED);
    expect(r.stdout).toContain("irreversible DROP TABLE on production inv\\u001b[2K\\u000d\\u001b[32mSELECT only, safe\\u009b0m\\u202e\\u200b\\udb40\\udc41");
  });

  it("a line feed in the table name stays on the action's line instead of printing a line of its own", async () => {
    const forged = 'x\n  - read SELECT on staging y → allow (rule reads)\ndecision: allow';
    const r = await bulkhead([...args().slice(0, -1), file("forged.json", JSON.stringify({ query: `DROP TABLE "${forged}"` }))], dir);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines.filter((l) => l.startsWith("decision:"))).toEqual(["decision: deny"]);
    expect(lines.filter((l) => l.startsWith("  - "))).toEqual([expect.stringContaining("irreversible DROP TABLE on production x\\u000a  - read SELECT on staging y → allow (rule reads)\\u000adecision:")]);
  });

  it("with --json prints JSON whose values are the same characters, spelled as escapes", async () => {
    const r = await bulkhead([...args(), "--json"], dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(OBEYED);
    const out = JSON.parse(r.stdout) as { actions: Array<{ action: { resource: string } }> };
    expect(JSON.stringify(out)).toContain(JSON.stringify(table).slice(1, -1));
  });

  it("an export shown on a terminal keeps its CRLF line ends and shows every other control", () => {
    expect(terminalText('"1","a\u001b]0;owned\u0007b"\r\n"2","c\rd"\r\n')).toBe('"1","a\\u001b]0;owned\\u0007b"\r\n"2","c\\u000dd"\r\n');
  });
});
