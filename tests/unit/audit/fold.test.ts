import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { prepareEvent, type WorkerAuditEvent } from "@/proxy-worker/audit/event";
import { assembleBatch, completionFacts } from "@/proxy-worker/audit/fold";
import type { WalRecord } from "@/proxy-worker/audit/wal/frame";

const NOW = Date.parse("2026-12-01T10:00:10.000Z");
let lsn = 0;
const rec = (e: WorkerAuditEvent, ageMs: number): WalRecord => ({ lsn: ++lsn, row: prepareEvent(e, new Date(NOW - ageMs)), bytes: 100 });
const decision = (id: string, ageMs: number, outcome = "allow") => rec({ type: "proxy.decision", actorType: "agent", outcome, data: { eventId: id, url: "http://x/" } }, ageMs);
const completion = (id: string, ageMs: number) =>
  rec({ type: "proxy.completed", actorType: "agent", outcome: "forwarded", data: { eventId: `${id}:completed`, decisionEventId: id, upstreamStatus: 204, durationMs: 3 } }, ageMs);
const options = { foldWindowMs: 250, now: NOW, wait: true };

describe("assembling a shipped batch", () => {
  it("folds each completion into its decision: one row per request", () => {
    const records = [decision("req-0001", 900), decision("req-0002", 800), completion("req-0002", 790), completion("req-0001", 700)];
    const b = assembleBatch(records, options);
    expect(b.rows.map((r) => r.eventId)).toEqual(["req-0001", "req-0002"]);
    expect(b.folded).toBe(2);
    expect(b.last).toBe(records[3]!.lsn);
    expect(JSON.parse(b.rows[1]!.data)).toMatchObject({ eventId: "req-0002", url: "http://x/", completion: { outcome: "forwarded", upstreamStatus: 204, durationMs: 3 } });
  });

  it("stops before a young decision whose completion has not arrived, and says how long to wait", () => {
    const records = [decision("req-0011", 900), completion("req-0011", 890), decision("req-0012", 100), decision("req-0013", 50), completion("req-0013", 40)];
    const b = assembleBatch(records, options);
    expect(b.rows.map((r) => r.eventId)).toEqual(["req-0011"]);
    expect(b.last).toBe(records[1]!.lsn);
    const first = assembleBatch(records.slice(2), options);
    expect(first.rows).toEqual([]);
    expect(first.waitMs).toBe(150);
  });

  it("ships an old decision without its completion, and a completion alone when its decision went earlier", () => {
    const records = [decision("req-0021", 900), completion("req-0020", 800)];
    const b = assembleBatch(records, options);
    expect(b.rows.map((r) => r.type)).toEqual(["proxy.decision", "proxy.completed"]);
    expect(JSON.parse(b.rows[0]!.data).completion).toBeUndefined();
  });

  it("never waits for refusals, and does not wait at all when draining", () => {
    expect(assembleBatch([decision("req-0031", 1, "deny")], options).rows).toHaveLength(1);
    expect(assembleBatch([decision("req-0032", 1)], { ...options, wait: false }).rows).toHaveLength(1);
  });

  it("folds only a completion inside the batch's end, so nothing is shipped twice", () => {
    const records = [decision("req-0041", 900), decision("req-0042", 10), completion("req-0041", 5)];
    const b = assembleBatch(records, options);
    expect(b.rows.map((r) => r.eventId)).toEqual(["req-0041"]);
    expect(JSON.parse(b.rows[0]!.data).completion).toBeUndefined();
    expect(b.last).toBe(records[0]!.lsn);
  });

  it("takes a completion's facts from its text as parsing and re-serialising them would, for any facts", () => {
    const value = fc.jsonValue({ maxDepth: 2 });
    // Keys an attacker-influenced fact could collide with are drawn often.
    const key = fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom("outcome", "at", "eventId", "decisionEventId", "__proto__", "1", "completion"));
    fc.assert(
      fc.property(fc.array(fc.tuple(key, value), { maxLength: 6 }), fc.option(fc.string({ maxLength: 8 }), { nil: null }), (entries, outcome) => {
        const d = decision("req-0100", 900);
        const facts = Object.fromEntries(entries.filter(([k]) => k !== "eventId" && k !== "decisionEventId" && k !== "__proto__"));
        const c = rec({ type: "proxy.completed", actorType: "agent", outcome, data: { eventId: "req-0100:completed", decisionEventId: "req-0100", ...facts } }, 800);
        const fast = completionFacts(d.row, c.row);
        // The same facts with the ids elsewhere in the text take the parsing path.
        const moved = { ...c.row, data: JSON.stringify({ ...facts, decisionEventId: "req-0100", eventId: "req-0100:completed" }) };
        const parsed = completionFacts(d.row, moved);
        expect(fast).not.toBeNull();
        expect(JSON.parse(fast!)).toEqual(JSON.parse(parsed!));
        expect(JSON.parse(fast!)).toEqual({ outcome: c.row.outcome, ...JSON.parse(c.row.data), eventId: undefined, decisionEventId: undefined, at: c.row.at });
      }),
      { numRuns: 1_000 },
    );
    // Not JSON, or not an object: not folded.
    const d = decision("req-0101", 900).row;
    const c = completion("req-0101", 800).row;
    expect(completionFacts(d, { ...c, data: "{not json" })).toBeNull();
    expect(completionFacts(d, { ...c, data: "[1]" })).toBeNull();
  });
});
