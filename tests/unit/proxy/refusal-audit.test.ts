import { afterEach, describe, expect, it, vi } from "vitest";
import { createLogger } from "@/lib/log";
import { ProxyRefusal } from "@/proxy-worker/proxy/errors";
import { RefusalAudit } from "@/proxy-worker/proxy/refusal-audit";
import type { DecisionEvent } from "@/proxy-worker/proxy/types";

describe("refusal audit: every refusal recorded, floods aggregated", () => {
  const events: DecisionEvent[] = [];
  let failing = false;
  const sink = {
    record: async (e: DecisionEvent) => {
      if (failing) throw new Error("database away");
      events.push(e);
    },
  };
  const audit = (burst = 3, windowMs = 1000) => new RefusalAudit({ sink, log: createLogger("test", "silent"), burst, windowMs });
  const source = (client: string, n: number) => ({ data: { eventId: `id-${client}-${n}`, listener: "explicit", client, url: `/x/${n}` }, auth: null });
  const parseError = () => new ProxyRefusal("malformed", "http_parse_error", "bad request");

  afterEach(() => {
    events.length = 0;
    failing = false;
    vi.useRealTimers();
  });

  it("records the first refusals individually, then one aggregate per window that every later refusal names", async () => {
    vi.useFakeTimers();
    const a = audit();
    const ids: Array<string | null> = [];
    for (let i = 0; i < 10; i++) ids.push((await a.record(parseError(), source("10.0.0.9", i))).auditEventId);
    expect(events).toHaveLength(3);
    expect(ids.slice(0, 3)).toEqual(["id-10.0.0.9-0", "id-10.0.0.9-1", "id-10.0.0.9-2"]);
    const aggregateId = ids[3];
    expect(new Set(ids.slice(3))).toEqual(new Set([aggregateId]));
    await vi.advanceTimersByTimeAsync(1500);
    expect(events).toHaveLength(4);
    expect(events[3]!.data).toMatchObject({ eventId: aggregateId, aggregated: true, count: 7, code: "http_parse_error", client: "10.0.0.9" });
    expect((events[3]!.data.samples as string[]).length).toBeLessThanOrEqual(5);
    await a.close();
  });

  it("keeps clients and reasons apart, and a new window starts over", async () => {
    vi.useFakeTimers();
    const a = audit(1);
    await a.record(parseError(), source("10.0.0.1", 0));
    await a.record(parseError(), source("10.0.0.2", 0));
    await a.record(new ProxyRefusal("identity", "token_missing", "no token"), source("10.0.0.1", 1));
    expect(events).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(1500);
    await a.record(parseError(), source("10.0.0.1", 2));
    expect(events).toHaveLength(4);
    await a.close();
  });

  it("writes open aggregates on close", async () => {
    const a = audit(1, 60_000);
    for (let i = 0; i < 5; i++) await a.record(parseError(), source("10.0.0.3", i));
    expect(events).toHaveLength(1);
    await a.close();
    expect(events).toHaveLength(2);
    expect(events[1]!.data.count).toBe(4);
  });

  it("still refuses when nothing can be recorded, and says so", async () => {
    failing = true;
    const a = audit();
    const refusal = await a.record(parseError(), source("10.0.0.4", 0));
    expect(refusal.auditEventId).toBeNull();
    expect(refusal.extra.auditWarning).toMatch(/could not be recorded/);
    await a.close();
  });

  it("keys IPv6 clients by /64 and IPv4 clients by address", async () => {
    const { clientKey } = await import("@/proxy-worker/proxy/refusal-audit");
    expect(clientKey("2001:db8:1:2:aaaa::1")).toBe(clientKey("2001:db8:1:2:bbbb::9"));
    expect(clientKey("2001:db8:1:3::1")).not.toBe(clientKey("2001:db8:1:2::1"));
    expect(clientKey("::ffff:10.0.0.1")).toBe("10.0.0.1");
  });

  it("has a global budget: a flood spread over many addresses ends in one aggregate per reason", async () => {
    const a = new RefusalAudit({ sink, log: createLogger("test", "silent"), burst: 2, windowMs: 60_000, globalBurst: 5 });
    const ids = new Set<string | null>();
    for (let i = 0; i < 200; i++) ids.add((await a.record(parseError(), source(`10.2.${Math.floor(i / 250)}.${i % 250}`, i))).auditEventId);
    expect(events).toHaveLength(5);
    await a.close();
    expect(events).toHaveLength(6);
    expect(events[5]!.data).toMatchObject({ aggregated: true, count: 195 });
    expect(ids.size).toBe(6);
  });

  it("bounds the keys it tracks: beyond them, one key per reason", async () => {
    const a = new RefusalAudit({ sink, log: createLogger("test", "silent"), burst: 1, windowMs: 60_000, maxKeys: 2 });
    for (let i = 0; i < 10; i++) await a.record(parseError(), source(`10.1.0.${i}`, i));
    expect(a.stats().keys).toBe(3);
    expect(events).toHaveLength(3);
    await a.close();
  });
});
