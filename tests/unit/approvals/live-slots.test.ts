import { describe, expect, it } from "vitest";
import { StreamSlots, streamOwner, STREAMS_PER_ACTOR } from "@/lib/approvals/live-slots";

describe("live approval stream slots", () => {
  it("bounds one person's (or key's) open streams, and frees a slot once however often it is released", () => {
    const slots = new StreamSlots(3, 100);
    const held = [slots.acquire("user:a"), slots.acquire("user:a"), slots.acquire("user:a")];
    expect(held.every((h) => "release" in h)).toBe(true);
    expect(slots.acquire("user:a")).toEqual({ refused: "actor" });
    // Someone else is not affected.
    expect("release" in slots.acquire("user:b")).toBe(true);
    const first = held[0] as { release: () => void };
    first.release();
    first.release();
    first.release();
    expect(slots.count("user:a")).toBe(2);
    expect(slots.count()).toBe(3);
    expect("release" in slots.acquire("user:a")).toBe(true);
    expect(slots.acquire("user:a")).toEqual({ refused: "actor" });
  });

  it("bounds all streams together, and forgets a person whose streams all closed", () => {
    const slots = new StreamSlots(2, 4);
    const got = ["a", "a", "b", "b"].map((k) => slots.acquire(k));
    expect(slots.acquire("c")).toEqual({ refused: "all" });
    for (const g of got) (g as { release: () => void }).release();
    expect(slots.count()).toBe(0);
    expect(slots.count("a")).toBe(0);
    expect("release" in slots.acquire("c")).toBe(true);
  });

  it("counts a person's sessions together and an API key on its own", () => {
    expect(streamOwner({ kind: "user", userId: "u1", email: "a@x", role: "auditor", sessionId: "s1" })).toBe(streamOwner({ kind: "user", userId: "u1", email: "a@x", role: "auditor", sessionId: "s2" }));
    expect(streamOwner({ kind: "api_key", apiKeyId: "k1", role: "auditor", createdById: "u1" })).not.toBe(streamOwner({ kind: "user", userId: "u1", email: "a@x", role: "auditor" }));
    expect(STREAMS_PER_ACTOR).toBeGreaterThanOrEqual(4);
  });
});
