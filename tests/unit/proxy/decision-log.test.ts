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
