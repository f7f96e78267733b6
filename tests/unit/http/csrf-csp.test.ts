import { describe, expect, it } from "vitest";
import { buildCsp, newNonce } from "@/lib/http/csp";
import { checkOriginHeaders } from "@/lib/http/csrf";

const APP = "http://127.0.0.1:3000";

describe("same-origin check for state changes made with the session cookie", () => {
  it.each([
    ["the dashboard's own Origin", { origin: APP, host: "127.0.0.1:3000" }, null],
    ["the same server reached under another name", { origin: "http://localhost:3000", host: "localhost:3000" }, null],
    ["no Origin but Sec-Fetch-Site: same-origin", { "sec-fetch-site": "same-origin", host: "127.0.0.1:3000" }, null],
  ])("accepts %s", (_name, h, expected) => {
    expect(checkOriginHeaders(new Headers(h), [APP])).toBe(expected);
  });

  it.each([
    ["no Origin and no Sec-Fetch-Site", { host: "127.0.0.1:3000" }],
    ["a foreign Origin", { origin: "https://evil.example", host: "127.0.0.1:3000" }],
    ["Origin: null (sandboxed frame, data: URL)", { origin: "null", host: "127.0.0.1:3000" }],
    ["a same-site sibling", { origin: "http://127.0.0.1:3001", host: "127.0.0.1:3000", "sec-fetch-site": "same-site" }],
    ["a cross-site fetch claiming the right Origin", { origin: APP, host: "127.0.0.1:3000", "sec-fetch-site": "cross-site" }],
    ["a navigation typed by the user (none)", { host: "127.0.0.1:3000", "sec-fetch-site": "none" }],
    ["an Origin that is not a URL", { origin: "127.0.0.1:3000", host: "127.0.0.1:3000" }],
    ["a non-http scheme with the host's name", { origin: "ftp://127.0.0.1:3000", host: "127.0.0.1:3000" }],
    ["the right host with a different port", { origin: "http://127.0.0.1:3001", host: "127.0.0.1:3000" }],
  ])("refuses %s", (_name, h) => {
    expect(checkOriginHeaders(new Headers(h), [APP])).not.toBeNull();
  });
});

describe("Content-Security-Policy", () => {
  const directives = (csp: string) => new Map(csp.split(";").map((d) => d.trim().split(/\s+/)).map(([k, ...v]) => [k!, v]));

  it("allows scripts only by nonce, never inline or eval, and forbids framing, plugins and <base>", () => {
    const nonce = newNonce();
    const d = directives(buildCsp({ nonce, secure: false }));
    expect(d.get("script-src")).toEqual(["'self'", `'nonce-${nonce}'`, "'strict-dynamic'"]);
    for (const [name, values] of d) {
      expect(values, name).not.toContain("'unsafe-inline'");
      expect(values, name).not.toContain("'unsafe-eval'");
      expect(values, name).not.toContain("*");
    }
    expect(d.get("frame-ancestors")).toEqual(["'none'"]);
    expect(d.get("object-src")).toEqual(["'none'"]);
    expect(d.get("base-uri")).toEqual(["'none'"]);
    expect(d.get("form-action")).toEqual(["'self'"]);
    expect(d.has("upgrade-insecure-requests")).toBe(false);
  });

  it("lets the sign-in form reach the identity provider, and upgrades requests over https", () => {
    const d = directives(buildCsp({ nonce: "n", secure: true, oidcIssuer: "https://id.example.com/realms/x" }));
    expect(d.get("form-action")).toEqual(["'self'", "https://id.example.com"]);
    expect(d.has("upgrade-insecure-requests")).toBe(true);
  });

  it("draws a fresh, unguessable nonce each time", () => {
    const nonces = new Set(Array.from({ length: 200 }, newNonce));
    expect(nonces.size).toBe(200);
    for (const n of nonces) expect(Buffer.from(n, "base64")).toHaveLength(16);
  });
});
