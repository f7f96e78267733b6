import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { captureLog } from "../../support/log-capture";
import { DECISION_LOG_MESSAGE, logDecision, logSafe, refusalLine } from "@/proxy-worker/proxy/decision-log";
import { ProxyRefusal } from "@/proxy-worker/proxy/errors";

describe("the canonical decision log line", () => {
  it.each([
    ["a newline", "a\nb", "a\\x0ab"],
    ["a carriage return", "a\rb", "a\\x0db"],
    ["line and paragraph separators", "a\u2028b\u2029c", "a\\u2028b\\u2029c"],
    ["a terminal escape", "\u001b[2Kx", "\\x1b[2Kx"],
    ["a bidirectional override", "gnp\u202e.exe", "gnp\\u202e.exe"],
    ["NUL and DEL", "a\u0000b\u007f", "a\\x00b\\x7f"],
    ["a backslash (so escapes stay unambiguous)", "a\\x0ab", "a\\\\x0ab"],
    ["non-ASCII letters and astral characters", "caf\u00e9 \u{1f600}", "caf\\xe9 \\u{1f600}"],
  ])("escapes %s to printable ASCII", (_name, input, expected) => {
    expect(logSafe(input)).toBe(expected);
  });

  it("leaves plain printable ASCII as it is, up to the limit", () => {
    const plain = "GET http://api.test:8080/repos/acme/app?x=1&y=[a]{b}~";
    expect(logSafe(plain)).toBe(plain);
    expect(logSafe("x".repeat(512), 512)).toBe("x".repeat(512));
    expect(logSafe("x".repeat(513), 512)).toBe(`${"x".repeat(512)}...(+1 more)`);
  });

  it("escapes exactly as the character-by-character rule says, for any mix of characters", () => {
    // The rule stated independently of the code: each code point has one spelling, and the output
    // keeps whole spellings until it has reached `max` characters.
    const spelling = (char: string) => {
      const code = char.codePointAt(0) as number;
      const hex = code.toString(16);
      if (char === "\\") return "\\\\";
      if (/^[ -~]$/.test(char)) return char;
      return code < 0x100 ? `\\x${hex.padStart(2, "0")}` : code <= 0xffff ? `\\u${hex.padStart(4, "0")}` : `\\u{${hex}}`;
    };
    const reference = (text: string, max: number) => {
      const chars = Array.from(text);
      const spellings = chars.map(spelling);
      let kept = 0;
      while (kept < chars.length && spellings.slice(0, kept).join("").length < max) kept++;
      const left = text.length - chars.slice(0, kept).join("").length;
      return spellings.slice(0, kept).join("") + (left > 0 ? `...(+${left} more)` : "");
    };
    const alphabet = ["a", "Z", "/", " ", "~", "\\", "\n", "\u0000", "\u007f", "\u00e9", "\u2028", "\u202e", "\u{1f600}", "\ud800", "x"];
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648);
    for (let i = 0; i < 3000; i++) {
      const length = next() % 40;
      // Half the cases printable ASCII only (a backslash among them at times): the fast path's inputs.
      const printableOnly = next() % 2 === 0;
      let text = "";
      for (let j = 0; j < length; j++) text += !printableOnly && next() % 4 === 0 ? alphabet[next() % alphabet.length] : String.fromCharCode(0x20 + (next() % 95));
      const max = [8, 16, 512][next() % 3]!;
      expect(logSafe(text, max)).toBe(reference(text, max));
    }
  });

  it("cuts long values and says how much was left out", () => {
    expect(logSafe("x".repeat(600), 512)).toBe(`${"x".repeat(512)}...(+88 more)`);
  });

  it("writes exactly one JSON line per decision, whatever the values contain", () => {
    const captured = captureLog();
    const forged = `/x\n{"msg":"${DECISION_LOG_MESSAGE}","decision":"allow"}\u2028\u001b[1m`;
    logDecision(captured.log, { decision: "deny", status: 403, url: forged, operations: [forged], reason: forged });
    const lines = captured.lines();
    expect(lines).toHaveLength(1);
    expect(/[^\x20-\x7e]/.test(lines[0]!)).toBe(false);
    const entry = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(entry).toMatchObject({ msg: DECISION_LOG_MESSAGE, decision: "deny", status: 403 });
    expect(String(entry.url)).toContain("\\x0a");
  });

  it("describes a refusal from what it carries", () => {
    const refusal = new ProxyRefusal("denied", "policy_deny", "irreversible volumeDelete");
    refusal.auditEventId = "e1";
    refusal.context = { eventId: "e1", listener: "explicit", client: "127.0.0.1", method: "POST", url: "http://x.test/", taskId: "t", agentId: "a", operations: ["volumeDelete"], effect: "irreversible", ruleId: "r1" };
    expect(refusalLine(refusal)).toMatchObject({ decision: "deny", status: 403, code: "policy_deny", taskId: "t", operations: ["volumeDelete"], ruleId: "r1", auditEventId: "e1" });
    expect(refusalLine(new ProxyRefusal("bad_gateway", "upstream_unreachable", "x"))).toMatchObject({ decision: "error", status: 502 });
  });
});

describe("the decision line on the product's logger (lib/log.ts)", () => {
  it("skips only the redaction walk: same stream and order, same level, and other lines are still redacted", () => {
    // A process of its own: createLogger writes to file descriptor 1.
    const dir = mkdtempSync(path.join(tmpdir(), "bulkhead-log-"));
    try {
      const script = path.join(dir, "run.ts");
      writeFileSync(
        script,
        [
          `import { createLogger, withoutRedaction } from ${JSON.stringify(path.resolve("lib/log.ts"))};`,
          `import { logDecision } from ${JSON.stringify(path.resolve("proxy-worker/proxy/decision-log.ts"))};`,
          `const log = createLogger("proxy-worker", "info");`,
          `log.info({ request: { password: "hunter2", token: "t0k" }, n: 1 }, "first");`,
          `logDecision(log, { decision: "allow", status: 200, url: "http://api.test/x", operations: ["issues.list"], taskId: "t" });`,
          `log.info({ headers: { authorization: "Bearer s3cret" } }, "third");`,
          // A context that smuggles an object into a field still gets the redaction.
          `logDecision(log, { decision: "deny", status: 403, reason: { token: "sm0ggled", note: "kept" } as never });`,
          `log.level = "warn";`,
          `logDecision(log, { decision: "deny", status: 403 });`,
          `log.warn({ n: 5 }, "last");`,
          `if (withoutRedaction(log) === log) throw new Error("no twin");`,
          `if (withoutRedaction(log).isLevelEnabled("info")) throw new Error("the twin did not follow the level");`,
        ].join("\n"),
      );
      const out = execFileSync(process.execPath, ["--import", "tsx", script], { cwd: process.cwd(), encoding: "utf8" });
      const lines = out.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.map((l) => l.msg)).toEqual(["first", DECISION_LOG_MESSAGE, "third", DECISION_LOG_MESSAGE, "last"]);
      expect(lines[0]!.request).toEqual({ password: "[redacted]", token: "[redacted]" });
      expect(lines[2]!.headers).toEqual({ authorization: "[redacted]" });
      expect(lines[3]!.reason).toEqual({ token: "[redacted]", note: "kept" });
      expect(out).not.toMatch(/hunter2|t0k|s3cret|sm0ggled/);
      // The decision line has the shape every other line has, and all its fields.
      expect(Object.keys(lines[1]!).slice(0, 4)).toEqual(["level", "time", "service", "name"]);
      expect(Object.keys(lines[0]!).slice(0, 4)).toEqual(["level", "time", "service", "name"]);
      expect(lines[4]!.msg).toBe("last");
      expect(lines[1]).toMatchObject({ service: "proxy-worker", decision: "allow", status: 200, url: "http://api.test/x", operations: ["issues.list"], taskId: "t" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
