import { describe, expect, it } from "vitest";
import { HOLD_LIMIT_RETRY_AFTER_SECONDS, ProxyRefusal, refusalResponse } from "@/proxy-worker/proxy/errors";

describe("a refusal's answer", () => {
  it("asks a rate-limited client to wait a second, and one over the hold limit until a decision can have come", () => {
    const rate = refusalResponse(new ProxyRefusal("rate_limited", "task_rate_limited", "too many requests"));
    expect(rate.status).toBe(429);
    expect(rate.headers["retry-after"]).toBe("1");
    const hold = refusalResponse(new ProxyRefusal("rate_limited", "hold_limit", "10 requests of this task are waiting for a decision"));
    expect(hold.status).toBe(429);
    expect(hold.headers["retry-after"]).toBe(String(HOLD_LIMIT_RETRY_AFTER_SECONDS));
    expect(Number(hold.headers["retry-after"])).toBeGreaterThanOrEqual(10);
    expect(JSON.parse(hold.body)).toMatchObject({ error: "hold_limit", kind: "rate_limited" });
  });

  it("says the kind the docs' error table names, and no Retry-After where waiting does not help", () => {
    const denied = refusalResponse(new ProxyRefusal("denied", "policy_deny", "no rule allows it"));
    expect(denied.status).toBe(403);
    expect(denied.headers["retry-after"]).toBeUndefined();
    expect(JSON.parse(denied.body)).toMatchObject({ error: "policy_deny", kind: "denied" });
    expect(refusalResponse(new ProxyRefusal("body_too_large", "body_too_large", "too big")).status).toBe(413);
  });
});
