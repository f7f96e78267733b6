import { describe, expect, it } from "vitest";
import { createWebhookInput, WEBHOOK_EVENTS } from "@/lib/webhooks/webhooks";

describe("createWebhookInput", () => {
  const base = { name: "sec-team", url: "https://hooks.example.com/x" };

  it("takes each event at most once: a repeated event is refused, never stored (or audited) as many", () => {
    expect(createWebhookInput.safeParse({ ...base, events: ["hold", "hold"] }).success).toBe(false);
    const flood = createWebhookInput.safeParse({ ...base, events: Array(100_000).fill("hold") });
    expect(flood.success).toBe(false);
    expect(flood.error?.issues[0]?.path).toEqual(["events"]);
    expect(createWebhookInput.parse({ ...base, events: [...WEBHOOK_EVENTS] }).events).toEqual([...WEBHOOK_EVENTS]);
    expect(createWebhookInput.parse({ ...base, events: ["decided", "hold"] }).events).toEqual(["decided", "hold"]);
  });
});
