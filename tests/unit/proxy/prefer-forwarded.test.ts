/**
 * `Prefer: respond-async` and `wait` ask Bulkhead (202-and-poll), not the upstream: they are left
 * out of an approval's digest, so they must not reach the upstream either (an upstream that
 * honours them would run a request its approval did not cover). Every other preference is the
 * upstream's (PostgREST's `tx=rollback`, `return=minimal`) and is forwarded as sent.
 */
import { describe, expect, it } from "vitest";
import { upstreamHeaders } from "@/proxy-worker/proxy/headers";

const forwarded = (prefer: string) => upstreamHeaders({ prefer, accept: "application/json" }, new Set(), null, "api.test")["prefer"];

describe("Prefer as forwarded", () => {
  it("without Bulkhead's own preferences", () => {
    expect(forwarded("respond-async, wait=5, return=minimal")).toBe("return=minimal");
    expect(forwarded("RESPOND-ASYNC,tx=rollback")).toBe("tx=rollback");
    expect(forwarded("wait=1")).toBeUndefined();
    expect(forwarded("respond-async")).toBeUndefined();
  });

  it("the upstream's own preferences as sent (the control)", () => {
    expect(forwarded("return=representation, tx=rollback")).toBe("return=representation, tx=rollback");
  });
});
