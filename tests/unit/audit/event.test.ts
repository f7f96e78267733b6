import { describe, expect, it } from "vitest";
import { AuditEventError } from "@/proxy-worker/audit/errors";
import { parseSpoolLine, prepareEvent, spoolLine, type WorkerAuditEvent } from "@/proxy-worker/audit/event";

const at = new Date("2026-11-25T10:00:00.123Z");
const event: WorkerAuditEvent = {
  type: "proxy.decision",
  actorType: "agent",
  actorId: "agent-1",
  agentId: "0F8FAD5B-D9CB-469F-A165-70867728950E",
  outcome: "deny",
  reason: "no rule | allows this",
  data: { method: "DELETE", url: "https://api.example.test/v1/volumes/x", nested: { emoji: "🔑", n: 1.5 } },
};

describe("worker audit events", () => {
  it("get an event id and the decision time, and survive a spool round trip exactly", () => {
    const row = prepareEvent(event, at);
    expect(row.eventId).toMatch(/^[0-9a-f-]{36}$/);
    expect(row.at).toBe("2026-11-25T10:00:00.123Z");
    expect(row.agentId).toBe("0f8fad5b-d9cb-469f-a165-70867728950e");
    expect(JSON.parse(row.data)).toMatchObject({ eventId: row.eventId, method: "DELETE" });
    const line = spoolLine(row);
    expect(line.endsWith("\n")).toBe(true);
    expect(line.slice(0, -1)).not.toContain("\n");
    expect(parseSpoolLine(line.slice(0, -1))).toEqual(row);
  });

  it("keep an event id the caller chose", () => {
    expect(prepareEvent({ ...event, data: { eventId: "req-0001-abc" } }, at).eventId).toBe("req-0001-abc");
  });

  it.each([
    ["an empty type", { type: "" }],
    ["an unknown actor type", { actorType: "robot" }],
    ["a malformed agent id", { agentId: "not-a-uuid" }],
    ["NUL in a text field", { reason: "a\u0000b" }],
    ["a lone surrogate", { reason: "a\ud800b" }],
    ["NUL inside data", { data: { x: ["\u0000"] } }],
    ["a lone surrogate inside a data key", { data: { "\udc00": 1 } }],
    ["array data", { data: [1] as unknown as Record<string, unknown> }],
    ["a malformed event id", { data: { eventId: "a b" } }],
    ["unserialisable data", { data: { big: 1n } }],
    ["oversized data", { data: { blob: "x".repeat(300 * 1024) } }],
  ])("are refused with %s", (_name, change) => {
    expect(() => prepareEvent({ ...event, ...(change as Partial<WorkerAuditEvent>) }, at)).toThrow(AuditEventError);
  });

  it("accept text that merely looks like an escape", () => {
    expect(() => prepareEvent({ ...event, data: { x: "\\u0000 and \\ud800" } }, at)).not.toThrow();
  });

  it("treat a torn or foreign spool line as unreadable", () => {
    const line = spoolLine(prepareEvent(event, at)).slice(0, -1);
    expect(parseSpoolLine(line.slice(0, line.length - 5))).toBeNull();
    expect(parseSpoolLine("")).toBeNull();
    expect(parseSpoolLine('{"v":2}')).toBeNull();
    expect(parseSpoolLine("\u0000\u0000\u0000")).toBeNull();
  });
});
