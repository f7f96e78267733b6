import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isoTime, MAX_EVENT_DATA_BYTES, minimalRow, prepareEvent, type WorkerAuditEvent } from "@/proxy-worker/audit/event";

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
const STORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const JSON_UNSTORABLE = /(?:^|[^\\])(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i;

/** What PostgreSQL would refuse anywhere in the row. */
function storable(row: ReturnType<typeof prepareEvent>): boolean {
  const texts = [row.type, row.actorType, row.actorId, row.outcome, row.effect, row.reason, row.ruleId].filter((x): x is string => x !== null);
  return texts.every((t) => !STORABLE.test(t)) && !JSON_UNSTORABLE.test(row.data) && Buffer.byteLength(row.data) <= MAX_EVENT_DATA_BYTES;
}

describe("worker audit events", () => {
  it("get an event id and the decision time, and keep what was given", () => {
    const row = prepareEvent(event, at);
    expect(row.eventId).toMatch(/^[0-9a-f-]{36}$/);
    expect(row.at).toBe("2026-11-25T10:00:00.123Z");
    expect(row.agentId).toBe("0f8fad5b-d9cb-469f-a165-70867728950e");
    const data = JSON.parse(row.data);
    expect(data).toEqual({ ...event.data, eventId: row.eventId });
    expect(data.sanitised).toBeUndefined();
  });

  it("keep an event id the caller chose", () => {
    expect(prepareEvent({ ...event, data: { eventId: "req-0001-abc" } }, at).eventId).toBe("req-0001-abc");
  });

  const cycle: Record<string, unknown> = { a: 1 };
  cycle.self = cycle;
  it.each([
    ["NUL in a text field", { reason: "a\u0000b" }, "reason", "nul"],
    ["a lone surrogate in a text field", { reason: "a\ud800b" }, "reason", "lone_surrogate"],
    ["NUL inside data", { data: { x: ["\u0000"] } }, "data.x[0]", "nul"],
    ["NUL in a GraphQL variable", { data: { actions: [{ detail: { arguments: { id: "vol\u0000prod" } } }] } }, "data.actions[0].detail.arguments.id", "nul"],
    ["a lone surrogate inside a data key", { data: { "\udc00": 1 } }, "data{\ufffd}", "lone_surrogate"],
    ["a huge field", { data: { blob: "x".repeat(300 * 1024) } }, "data.blob", "truncated"],
    ["an unserialisable value", { data: { big: 1n } }, "data.big", "not_json"],
    ["a cycle", { data: cycle }, "data.self", "not_json"],
    ["a malformed agent id", { agentId: "not-a-uuid" }, "agentId", "dropped"],
    ["an unknown actor type", { actorType: "robot" }, "actorType", "dropped"],
    // The database refuses people and API keys from the worker's role (audit_events_actor_guard),
    // and that refusal would stop the shipper at the event.
    ["a person as the actor", { actorType: "user" }, "actorType", "dropped"],
    ["an API key as the actor", { actorType: "api_key" }, "actorType", "dropped"],
    ["a malformed event id", { data: { eventId: "a b" } }, "data.eventId", "dropped"],
    ["an over-long reason", { reason: "r".repeat(10_000) }, "reason", "truncated"],
  ])("are recorded sanitised, saying so, with %s", (_name, change, path, what) => {
    const row = prepareEvent({ ...event, ...(change as Partial<WorkerAuditEvent>) }, at);
    expect(storable(row)).toBe(true);
    const data = JSON.parse(row.data);
    expect(data.eventId).toBe(row.eventId);
    expect(data.sanitised.changes).toContainEqual({ path, what });
    expect(data.minimal).toBeUndefined();
  });

  it("keep the facts of an event whose data is too large even after cutting strings", () => {
    const wide = Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`key${i}`, "v".repeat(20)]));
    const row = prepareEvent({ ...event, data: { method: "POST", ...wide } }, at);
    expect(storable(row)).toBe(true);
    const data = JSON.parse(row.data);
    expect(data.method).toBe("POST");
    expect(data.sanitised.changes).toContainEqual({ path: "data", what: "truncated" });
  });

  it("never throw: what cannot be prepared at all becomes a minimal event", () => {
    const hostile = { ...event, get data(): Record<string, unknown> { throw new Error("boom"); } } as WorkerAuditEvent;
    const row = prepareEvent(hostile, at);
    expect(row.type).toBe("proxy.decision");
    expect(row.outcome).toBe("deny");
    expect(JSON.parse(row.data)).toMatchObject({ minimal: true, cause: "boom" });
    expect(row.reason).toMatch(/minimal form/);
  });

  it("in minimal form keep only what cannot be refused", () => {
    const row = minimalRow({ type: "proxy.decision\u0000", actorType: "agent", agentId: "nope", outcome: "deny", reason: "x\u0000" }, at, "refused");
    expect(storable(row)).toBe(true);
    expect(row.agentId).toBeNull();
    expect(row.reason).toBe("recorded in minimal form: refused");
  });

  it("accept text that merely looks like an escape, unchanged", () => {
    const row = prepareEvent({ ...event, data: { x: "\\u0000 and \\ud800" } }, at);
    expect(JSON.parse(row.data)).toEqual({ x: "\\u0000 and \\ud800", eventId: row.eventId });
  });

  // The data text is built without copying data when it can be; it must be the text the copy gave.
  it("carry data's text exactly as JSON.stringify({ ...data, eventId }) gives it, key order included", () => {
    const key = fc.oneof(fc.constantFrom("eventId", "__proto__", "1", "0", "toString", "a", ""), fc.string({ maxLength: 6 }));
    const data = fc.oneof(
      fc.dictionary(key, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 8 }),
      fc.constant({}),
      fc.record({ eventId: fc.constantFrom("req-0001-abc", "evt:2026.12.02_x", "a b") }, { requiredKeys: [] }),
    );
    fc.assert(
      fc.property(data, fc.boolean(), (d, storableOnly) => {
        const input = storableOnly ? (JSON.parse(JSON.stringify(d).replace(/\\u0000/g, "")) as Record<string, unknown>) : d;
        const row = prepareEvent({ ...event, data: input }, at);
        const parsed = JSON.parse(row.data) as Record<string, unknown>;
        if (parsed.sanitised !== undefined) return; // sanitised: a different text by design, tested above
        expect(row.data).toBe(JSON.stringify({ ...input, eventId: row.eventId }));
      }),
      { numRuns: 2000 },
    );
    // An object with its own toJSON, or another prototype, is copied as before.
    const own = { a: 1, toJSON: () => ({ only: "this" }) };
    expect(prepareEvent({ ...event, data: own }, at).data).toBe(JSON.stringify({ ...own, eventId: "x" }));
  });

  it("keep the decision time to the millisecond, however many share one", () => {
    const a = prepareEvent(event, new Date("2026-11-25T10:00:00.123Z"));
    const b = prepareEvent(event, new Date("2026-11-25T10:00:00.123Z"));
    const c = prepareEvent(event, new Date("2026-11-25T10:00:00.124Z"));
    const d = prepareEvent(event, new Date("2026-11-25T10:00:00.123Z"));
    expect([a.at, b.at, c.at, d.at]).toEqual(["2026-11-25T10:00:00.123Z", "2026-11-25T10:00:00.123Z", "2026-11-25T10:00:00.124Z", "2026-11-25T10:00:00.123Z"]);
  });

  it("formats the time as toISOString does, from the second's text kept between calls", () => {
    // Consecutive instants (the cache's own path), any instant JavaScript can represent, and
    // the edges: before 1970, years beyond 9999 (±YYYYYY), the first millisecond of a second.
    for (let ms = Date.UTC(2026, 11, 6, 23, 59, 58, 990); ms < Date.UTC(2026, 11, 7, 0, 0, 1, 20); ms += 7) expect(isoTime(new Date(ms))).toBe(new Date(ms).toISOString());
    for (const ms of [0, -1, -999, -1000, -1001, 253402300799999, 253402300800000, -62198755200001, 8.64e15, -8.64e15]) expect(isoTime(new Date(ms))).toBe(new Date(ms).toISOString());
    fc.assert(fc.property(fc.integer({ min: -8.64e15, max: 8.64e15 }), (ms) => isoTime(new Date(ms)) === new Date(ms).toISOString()));
  });
});
