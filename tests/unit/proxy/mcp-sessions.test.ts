import { describe, expect, it } from "vitest";
import { McpSessions } from "@/proxy-worker/proxy/mcp-sessions";

describe("McpSessions", () => {
  const at = "http://mcp.test:80";

  it("a session is its opener's, per endpoint; a second task cannot take it over by being handed the same id", () => {
    const s = new McpSessions();
    s.bind(at, "abc", "task-a");
    s.bind(at, "abc", "task-b");
    expect(s.check(at, "abc", "task-a")).toBe("own");
    expect(s.check(at, "abc", "task-b")).toBe("foreign");
    expect(s.check("http://other.test:80", "abc", "task-a")).toBe("unknown");
    expect(s.check(at, "ABC", "task-a")).toBe("unknown");
  });

  it("only its own task forgets a session", () => {
    const s = new McpSessions();
    s.bind(at, "abc", "task-a");
    s.forget(at, "abc", "task-b");
    expect(s.check(at, "abc", "task-a")).toBe("own");
    s.forget(at, "abc", "task-a");
    expect(s.check(at, "abc", "task-a")).toBe("unknown");
  });

  it("stays within its bounds: per task the oldest goes, in all the least recently used, and idle ones expire", () => {
    let now = 0;
    const s = new McpSessions({ maxPerTask: 3, maxTotal: 5, idleMs: 1000 }, () => now);
    for (const id of ["1", "2", "3", "4"]) s.bind(at, id, "a");
    expect(["1", "2", "3", "4"].map((id) => s.check(at, id, "a"))).toEqual(["unknown", "own", "own", "own"]);
    for (const id of ["5", "6", "7"]) s.bind(at, id, "b");
    expect(s.size).toBe(5);
    // "2" was the least recently used of all.
    expect(s.check(at, "2", "a")).toBe("unknown");
    now = 2000;
    expect(s.check(at, "7", "b")).toBe("unknown");
    expect(s.size).toBeLessThan(5);
  });

  it("ignores empty and overlong ids", () => {
    const s = new McpSessions();
    s.bind(at, "", "a");
    s.bind(at, "x".repeat(1025), "a");
    expect(s.size).toBe(0);
  });
});
