import { describe, expect, it } from "vitest";
import { canonicalAuthority, canonicalizeRequest, canonicalUrl } from "@/lib/semantics/canonical";

const get = (url: string, headers: Record<string, string | string[]> = {}) => canonicalizeRequest({ method: "GET", url, headers });

describe("canonicalizeRequest: accepted spellings and their canonical form", () => {
  const cases: Array<{ name: string; url: string; path: string; host?: string; port?: number; query?: string }> = [
    { name: "plain path", url: "https://api.example.com/v1/things", path: "/v1/things", port: 443 },
    { name: "empty path becomes /", url: "https://api.example.com", path: "/" },
    { name: "query kept raw", url: "https://api.example.com/a?x=1&y=%2f", path: "/a", query: "x=1&y=%2f" },
    { name: "lower-case hex is upper-cased", url: "https://a.example.com/a%3ab", path: "/a%3Ab" },
    { name: "encoded unreserved characters are decoded", url: "https://a.example.com/%7Euser/%41%62%2D%5F", path: "/~user/Ab-_" },
    { name: "matrix parameters are kept literally", url: "https://a.example.com/volumes/1;v=2/x", path: "/volumes/1;v=2/x" },
    { name: "an encoded % not before an escape is kept", url: "https://a.example.com/100%25done/%25", path: "/100%25done/%25" },
    { name: "non-ASCII is percent-encoded as UTF-8", url: "https://a.example.com/caf\u00e9", path: "/caf%C3%A9" },
    { name: "escaped UTF-8 is kept (upper-case hex)", url: "https://a.example.com/caf%c3%a9/%F0%9F%98%80", path: "/caf%C3%A9/%F0%9F%98%80" },
    { name: "unsafe ASCII is percent-encoded", url: "https://a.example.com/a|b^c", path: "/a%7Cb%5Ec" },
    { name: "trailing slash is significant", url: "https://a.example.com/a/", path: "/a/" },
    { name: "host is lower-cased", url: "https://API.Example.COM/", path: "/", host: "api.example.com" },
    { name: "trailing dot removed from host", url: "https://api.example.com./x", path: "/x", host: "api.example.com" },
    { name: "IDN becomes punycode", url: "https://b\u00fccher.example/x", path: "/x", host: "xn--bcher-kva.example" },
    { name: "default http port", url: "http://a.example.com/", path: "/", port: 80 },
    { name: "explicit port", url: "https://a.example.com:8443/", path: "/", port: 8443 },
    { name: "IPv4 shorthand normalised", url: "http://0x7f.1/", path: "/", host: "127.0.0.1" },
    { name: "IPv6 literal keeps brackets", url: "http://[::1]:8080/", path: "/", host: "[::1]", port: 8080 },
    { name: "upper-case scheme", url: "HTTPS://a.example.com/x", path: "/x" },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const result = get(c.url);
      if (!result.ok) throw new Error(`${result.code}: ${result.reason}`);
      expect(result.request.path).toBe(c.path);
      if (c.host) expect(result.request.host).toBe(c.host);
      if (c.port) expect(result.request.port).toBe(c.port);
      if (c.query !== undefined) expect(result.request.query).toBe(c.query);
    });
  }
});

describe("canonicalizeRequest: rejected spellings (each with its own code)", () => {
  const cases: Array<{ name: string; url: string; code: string }> = [
    { name: "dot segment", url: "https://a.example.com/a/../admin", code: "dot_segment" },
    { name: "overlong UTF-8 dots %C0%AE%C0%AE", url: "https://a.example.com/a/%C0%AE%C0%AE/admin", code: "invalid_utf8" },
    { name: "overlong UTF-8 slash %C0%AF", url: "https://a.example.com/a%C0%AFadmin", code: "invalid_utf8" },
    { name: "three-byte overlong dot %E0%80%AE", url: "https://a.example.com/a/%E0%80%AE%E0%80%AE/admin", code: "invalid_utf8" },
    { name: "encoded surrogate %ED%A0%80", url: "https://a.example.com/a%ED%A0%80", code: "invalid_utf8" },
    { name: "stray byte %FF", url: "https://a.example.com/a%FF", code: "invalid_utf8" },
    { name: "a sequence cut by a slash %C3/%A9", url: "https://a.example.com/caf%C3/%A9", code: "invalid_utf8" },
    { name: "single dot segment", url: "https://a.example.com/a/./b", code: "dot_segment" },
    { name: "encoded dot segment %2e%2e", url: "https://a.example.com/a/%2e%2e/admin", code: "dot_segment" },
    { name: "mixed-case encoded dots .%2E", url: "https://a.example.com/a/.%2E/admin", code: "dot_segment" },
    { name: "dot segment with matrix parameter ..;", url: "https://a.example.com/a/..;x=1/admin", code: "dot_segment" },
    // The same with the `;` escaped: a front server that decodes the path before passing it on
    // (nginx's `proxy_pass` with a URI) hands Tomcat `..;x`, which it resolves to `..`.
    { name: "dot segment with an escaped matrix parameter ..%3B", url: "https://a.example.com/a/..%3Bx=1/admin", code: "dot_segment" },
    { name: "encoded dots with an escaped ; %2e%2e%3b", url: "https://a.example.com/a/%2e%2e%3b/admin", code: "dot_segment" },
    { name: "single dot with an escaped ; .%3B", url: "https://a.example.com/a/.%3B/admin", code: "dot_segment" },
    // A server that decodes twice reads these as `/`, `..` and `volumes`.
    { name: "double-encoded slash %252F", url: "https://a.example.com/volumes%252Fv1", code: "double_encoding" },
    { name: "double-encoded dots %252e%252e", url: "https://a.example.com/a/%252e%252e/admin", code: "double_encoding" },
    { name: "double-encoded letter %2576", url: "https://a.example.com/%2576olumes/v1", code: "double_encoding" },
    { name: "double-encoded, lower-case hex", url: "https://a.example.com/a%25%32%66b", code: "double_encoding" },
    { name: "encoded slash %2F", url: "https://a.example.com/a%2Fb", code: "encoded_slash" },
    { name: "encoded slash lower-case %2f", url: "https://a.example.com/repos/a%2fb", code: "encoded_slash" },
    { name: "encoded backslash %5c", url: "https://a.example.com/a%5cb", code: "encoded_backslash" },
    { name: "double slash", url: "https://a.example.com/a//b", code: "double_slash" },
    { name: "leading double slash in path", url: "https://a.example.com//evil.example.com/x", code: "double_slash" },
    { name: "backslash in path", url: "https://a.example.com/a\\b", code: "backslash" },
    { name: "backslash in authority", url: "https://a.example.com\\@evil.example.com/", code: "backslash" },
    { name: "userinfo", url: "https://user:pass@a.example.com/", code: "userinfo" },
    { name: "userinfo used to disguise the host", url: "https://api.github.com@evil.example.com/", code: "userinfo" },
    { name: "non-http scheme", url: "ftp://a.example.com/", code: "unsupported_scheme" },
    { name: "javascript scheme", url: "javascript:alert(1)", code: "unsupported_scheme" },
    { name: "scheme without //", url: "http:a.example.com/x", code: "malformed_authority" },
    { name: "relative URL", url: "/just/a/path", code: "not_absolute" },
    { name: "NUL byte", url: "https://a.example.com/a\u0000b", code: "control_character" },
    { name: "encoded NUL", url: "https://a.example.com/a%00b", code: "control_character" },
    { name: "encoded newline", url: "https://a.example.com/a%0Ab", code: "control_character" },
    { name: "tab (stripped by WHATWG URL)", url: "https://a.example.com/a\tb", code: "control_character" },
    { name: "space", url: "https://a.example.com/a b", code: "whitespace" },
    { name: "invalid percent-encoding", url: "https://a.example.com/a%zz", code: "invalid_percent_encoding" },
    { name: "truncated percent-encoding", url: "https://a.example.com/a%2", code: "invalid_percent_encoding" },
    { name: "IIS %u encoding", url: "https://a.example.com/a/%u002e%u002e/b", code: "invalid_percent_encoding" },
    { name: "invalid percent-encoding in query", url: "https://a.example.com/a?x=%g1", code: "invalid_percent_encoding" },
    { name: "fragment", url: "https://a.example.com/a#frag", code: "fragment" },
    { name: "empty host", url: "https:///a", code: "missing_host" },
    { name: "port zero", url: "https://a.example.com:0/", code: "invalid_port" },
    { name: "percent-encoded host (refused, never decoded)", url: "https://pub%6cic.example/", code: "invalid_host" },
    { name: "percent-encoded IPv4 host", url: "http://%31%32%37.0.0.1/", code: "invalid_host" },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const result = get(c.url);
      expect(result.ok).toBe(false);
      if (!result.ok) {
        expect(result.code).toBe(c.code);
        expect(result.reason.length).toBeGreaterThan(5);
      }
    });
  }
});

describe("canonicalizeRequest: method and headers", () => {
  it("upper-cases the method and lower-cases header names", () => {
    const r = canonicalizeRequest({ method: "delete", url: "https://a.example.com/x", headers: { "X-Thing": "1" } });
    expect(r.ok && r.request.method).toBe("DELETE");
    expect(r.ok && r.request.headers["x-thing"]).toBe("1");
  });
  it("rejects an invalid method token", () => {
    const r = canonicalizeRequest({ method: "GE T", url: "https://a.example.com/" });
    expect(r.ok ? null : r.code).toBe("invalid_method");
  });
  it("rejects CONNECT (tunnels are not classified here)", () => {
    const r = canonicalizeRequest({ method: "CONNECT", url: "https://a.example.com/" });
    expect(r.ok ? null : r.code).toBe("unsupported_method");
  });
  it("accepts a Host header that names the same authority", () => {
    expect(get("https://a.example.com/x", { Host: "A.example.com:443" }).ok).toBe(true);
  });
  it("rejects a Host header that differs from the URL", () => {
    const r = get("https://a.example.com/x", { host: "evil.example.com" });
    expect(r.ok ? null : r.code).toBe("host_mismatch");
  });
  it("rejects duplicate Host headers", () => {
    const r = get("https://a.example.com/x", { host: ["a.example.com", "evil.example.com"] });
    expect(r.ok ? null : r.code).toBe("duplicate_header");
  });
  it("rejects the same header under two spellings", () => {
    const r = get("https://a.example.com/x", { "Content-Type": "application/json", "content-type": "text/plain" });
    expect(r.ok ? null : r.code).toBe("duplicate_header");
  });
  it("rejects header values with CR/LF", () => {
    const r = get("https://a.example.com/x", { "x-a": "1\r\nHost: evil" });
    expect(r.ok ? null : r.code).toBe("invalid_header");
  });
  it("refuses a percent-encoded Host header instead of decoding it to the URL's host", () => {
    const result = get("https://public.example/x", { host: "pub%6cic.example" });
    expect(result).toMatchObject({ ok: false, code: "host_mismatch" });
  });

  it("gives one canonical authority for every spelling, as CONNECT targets and Host headers use it", () => {
    expect(canonicalAuthority("https", "API.Example.COM.:443")).toEqual({ ok: true, host: "api.example.com", port: 443 });
    expect(canonicalAuthority("https", "[2606:4700:0:0::1111]:443")).toEqual({ ok: true, host: "[2606:4700::1111]", port: 443 });
    expect(canonicalAuthority("https", "2130706433:8443")).toEqual({ ok: true, host: "127.0.0.1", port: 8443 });
    expect(canonicalAuthority("https", "pub%6cic.example:443")).toMatchObject({ ok: false, code: "invalid_host" });
  });

  it("remembers an authority's parse per scheme, never a refusal, and stays right past its bound", () => {
    // The same spelling under the other scheme has its own default port.
    expect(canonicalAuthority("http", "memo.example")).toEqual({ ok: true, host: "memo.example", port: 80 });
    expect(canonicalAuthority("https", "memo.example")).toEqual({ ok: true, host: "memo.example", port: 443 });
    expect(canonicalAuthority("http", "memo.example")).toEqual({ ok: true, host: "memo.example", port: 80 });
    // A remembered answer is shared, so it cannot be changed by whoever got it.
    const shared = canonicalAuthority("https", "memo.example");
    expect(Object.isFrozen(shared)).toBe(true);
    expect(canonicalAuthority("https", "memo.example")).toBe(shared);
    // A refused spelling is refused every time, and does not shadow its scheme's other spellings.
    for (let i = 0; i < 2; i++) expect(canonicalAuthority("https", "a@memo.example")).toMatchObject({ ok: false, code: "invalid_host" });
    // Thousands of distinct hosts (more than it keeps), each still parsed right when asked again.
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 3_000; i++) expect(canonicalAuthority("http", `h${i}.example:${1000 + i}`)).toEqual({ ok: true, host: `h${i}.example`, port: 1000 + i });
    }
    expect(canonicalAuthority("http", "MEMO.example.:80")).toEqual({ ok: true, host: "memo.example", port: 80 });
  });

  it("canonicalUrl omits the default port and keeps the query", () => {
    const r = get("https://A.example.com:443/a%7e?q=1");
    expect(r.ok && canonicalUrl(r.request)).toBe("https://a.example.com/a~?q=1");
  });
});
