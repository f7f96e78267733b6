import { describe, expect, it } from "vitest";
import { authEndpointRefusal, isUsableCallbackUrl, withoutUnusableCallbackCookie } from "@/lib/auth/auth-endpoints";

const PASSWORD = [{ id: "password", type: "credentials" }];
const WITH_OIDC = [...PASSWORD, { id: "oidc", type: "oidc" }];

describe("next-auth's endpoints this dashboard has", () => {
  it.each([
    ["GET", "/api/auth/csrf"],
    ["GET", "/api/auth/providers"],
    ["GET", "/api/auth/session"],
    ["POST", "/api/auth/session"],
    ["GET", "/api/auth/signin"],
    ["POST", "/api/auth/signin/password"],
    ["GET", "/api/auth/signout"],
    ["POST", "/api/auth/signout"],
    ["GET", "/api/auth/error"],
    ["POST", "/api/auth/callback/password"],
    ["POST", "/api/auth//callback//password"],
  ])("%s %s is next-auth's", (method, path) => {
    expect(authEndpointRefusal(method, path, PASSWORD)).toBeNull();
  });

  it("the identity provider's endpoints exist only when it is configured", () => {
    for (const [method, path] of [["POST", "/api/auth/signin/oidc"], ["GET", "/api/auth/callback/oidc"], ["POST", "/api/auth/callback/oidc"]] as const) {
      expect(authEndpointRefusal(method, path, WITH_OIDC), `${method} ${path}`).toBeNull();
      expect(authEndpointRefusal(method, path, PASSWORD), `${method} ${path}`).toMatchObject({ status: 404, error: "not_found" });
    }
  });

  it.each([
    ["GET", "/api/auth/nope", 404, undefined],
    ["GET", "/api/auth", 404, undefined],
    ["GET", "/api/auth/verify-request", 404, undefined],
    ["GET", "/api/auth/webauthn-options/password", 404, undefined],
    ["GET", "/api/auth/__proto__", 404, undefined],
    ["GET", "/api/auth/toString", 404, undefined],
    ["POST", "/api/auth/callback/credentials", 404, undefined],
    ["GET", "/api/auth/callback", 404, undefined],
    ["GET", "/api/auth/csrf/password", 404, undefined],
    ["GET", "/api/auth/callback/password/x", 404, undefined],
    ["GET", "/api/auth/signin/password", 404, undefined],
    ["GET", "/api/auth/callback/password", 405, ["POST"]],
    ["POST", "/api/auth/csrf", 405, ["GET"]],
    ["PUT", "/api/auth/session", 405, ["GET", "POST"]],
    ["DELETE", "/api/auth/signout", 405, ["GET", "POST"]],
  ] as const)("%s %s is refused %d", (method, path, status, allow) => {
    const refusal = authEndpointRefusal(method, path, WITH_OIDC);
    expect(refusal).toMatchObject({ status, error: status === 404 ? "not_found" : "method_not_allowed" });
    expect(refusal?.allow).toEqual(allow);
    expect(refusal?.message).not.toContain("nope");
  });
});

describe("a callback URL next-auth takes", () => {
  it.each([
    ["/agents", true],
    ["http://127.0.0.1:3000/agents", true],
    ["https://evil.example/", true], // next-auth's redirect callback sends a foreign one back to the dashboard
    ["foo:bar", false],
    ["javascript:alert(1)", false],
    ["agents", false],
    [" ", false],
    ["", false],
  ])("%j: %s", (value, usable) => {
    expect(isUsableCallbackUrl(value, "http://127.0.0.1:3000")).toBe(usable);
  });
});

describe("a callback-URL cookie next-auth would refuse", () => {
  const origin = "http://127.0.0.1:3000";
  it("is dropped from the Cookie header, every other cookie kept as sent", () => {
    expect(withoutUnusableCallbackCookie("a=1; authjs.callback-url=foo%3Abar; authjs.session-token=x", "authjs.callback-url", origin)).toBe("a=1; authjs.session-token=x");
    expect(withoutUnusableCallbackCookie("authjs.callback-url=%E0%A4%A", "authjs.callback-url", origin)).toBe("");
    expect(withoutUnusableCallbackCookie("__Host-authjs.callback-url=agents", "__Host-authjs.callback-url", origin)).toBe("");
  });
  it("is left alone when usable, or absent", () => {
    expect(withoutUnusableCallbackCookie("authjs.callback-url=%2Fagents; b=2", "authjs.callback-url", origin)).toBeNull();
    expect(withoutUnusableCallbackCookie("authjs.callback-url=http%3A%2F%2F127.0.0.1%3A3000", "authjs.callback-url", origin)).toBeNull();
    expect(withoutUnusableCallbackCookie("x-authjs.callback-url=foo%3Abar", "authjs.callback-url", origin)).toBeNull();
    expect(withoutUnusableCallbackCookie(null, "authjs.callback-url", origin)).toBeNull();
  });
});
