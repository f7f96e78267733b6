/**
 * The approval card shows every header the held request will be forwarded with: headers change
 * what a server does, and the approval is bound to all of them. The card showed eight chosen
 * ones, so `X-Cascade: delete-all-backups` went out after an approval nobody could read it on.
 */
import { describe, expect, it } from "vitest";
import { forwardedHeadersForCard, storedRequest } from "@/lib/approvals/stored-request";
import { agentStripped } from "@/proxy-worker/proxy/headers";
import { canonical } from "../semantics/support";

const forwarded = (name: string) => !agentStripped(name);

describe("the headers kept with a held request", () => {
  it("every header that is forwarded, and none that is not", () => {
    const request = canonical("DELETE", "https://api.storage.example.com/volumes/v1", {
      headers: { "x-cascade": "delete-all-backups", prefer: "return=minimal", "x-http-method-override": "PURGE", accept: "application/json", "if-match": '"abc"', authorization: "Bearer agent-own", cookie: "s=1", "proxy-authorization": "Bearer t", "x-forwarded-host": "evil", "bulkhead-approval": "grant" },
    });
    const kept = storedRequest(request, forwarded).requestHeaders;
    expect(kept).toMatchObject({ "x-cascade": "delete-all-backups", prefer: "return=minimal", "x-http-method-override": "PURGE", accept: "application/json", "if-match": '"abc"' });
    for (const gone of ["authorization", "cookie", "proxy-authorization", "x-forwarded-host", "bulkhead-approval", "host"]) expect(kept, gone).not.toHaveProperty(gone);
  });

  it("a credential-like header is shown as present, not by value; an idempotency key is shown", () => {
    const kept = forwardedHeadersForCard({ "x-api-key": "sk_live_123456", "x-auth-token": "abc", "idempotency-key": "k-1" }, forwarded);
    expect(kept["x-api-key"]).toBe("(14 characters, not shown: a credential)");
    expect(kept["x-auth-token"]).toMatch(/not shown/);
    expect(kept["idempotency-key"]).toBe("k-1");
    expect(JSON.stringify(kept)).not.toContain("sk_live");
  });

  it("long values are cut, and past 64 headers the rest are counted", () => {
    const many: Record<string, string> = { "x-a-long": "a".repeat(2000) };
    for (let i = 0; i < 100; i++) many[`x-h${String(i).padStart(3, "0")}`] = "v";
    const kept = forwardedHeadersForCard(many, forwarded);
    expect(Object.keys(kept)).toHaveLength(65);
    expect(kept["…"]).toBe("37 more headers not shown");
    expect(kept["x-a-long"]).toMatch(/^a{512}… \(2000 characters\)$/);
  });
});
