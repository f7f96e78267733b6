import { describe, expect, it } from "vitest";
import { InvalidServerNameError, sameServerName, validateServerName, type ServerNameProblem } from "@/lib/tls/leaf";

const label63 = "a".repeat(63);
// 63+1+63+1+63+1+61 = 253 characters
const name253 = [label63, label63, label63, "a".repeat(61)].join(".");
const name254 = [label63, label63, label63, "a".repeat(62)].join(".");

describe("validateServerName (SNI is attacker-controlled)", () => {
  const rejected: Array<[string, unknown, ServerNameProblem]> = [
    ["wildcard", "*.github.com", "wildcard"],
    ["bare wildcard", "*", "wildcard"],
    ["wildcard inside a label", "api*.github.com", "wildcard"],
    ["empty label", "a..b", "empty_label"],
    ["leading dot", ".github.com", "empty_label"],
    ["two trailing dots", "github.com..", "empty_label"],
    ["just a dot", ".", "empty"],
    ["leading hyphen", "-a.com", "label_hyphen"],
    ["trailing hyphen", "a-.com", "label_hyphen"],
    ["space", "a b", "invalid_character"],
    ["NUL", "x\0y", "invalid_character"],
    ["NUL after a real name", "api.github.com\0.evil.com", "invalid_character"],
    ["tab", "a\tb.com", "invalid_character"],
    ["CRLF", "a.com\r\nHost: b", "invalid_character"],
    ["254 characters", name254, "too_long"],
    ["1000 characters", "a.".repeat(500), "too_long"],
    ["label of 64", `${"a".repeat(64)}.com`, "label_too_long"],
    ["empty", "", "empty"],
    ["not a string", 42, "not_a_string"],
    ["underscore", "_dmarc.github.com", "invalid_character"],
    ["underscore in the TLD", "github._com", "invalid_character"],
    ["slash", "github.com/evil", "invalid_character"],
    ["userinfo", "user@github.com", "invalid_character"],
    ["port", "github.com:443", "invalid_ip"],
    ["bracketed IPv6", "[::1]", "invalid_ip"],
    ["IPv6 zone id", "fe80::1%eth0", "invalid_ip"],
    ["non-ASCII (IDN not in A-label form)", "bücher.de", "invalid_character"],
    ["Cyrillic homograph", "аpi.github.com", "invalid_character"],
    ["fullwidth dot", "github。com", "invalid_character"],
    ["numeric TLD", "1.2.3", "numeric_tld"],
    ["short IPv4 form", "127.1", "numeric_tld"],
    ["hex IPv4 form", "0x7f.0.0.1", "numeric_tld"],
    ["decimal IPv4 form", "2130706433", "numeric_tld"],
    ["octal IPv4 form", "0177.0.0.1", "numeric_tld"],
    ["IPv4 with a leading zero", "127.0.0.01", "numeric_tld"],
    ["IPv4 out of range", "256.0.0.1", "numeric_tld"],
    ["five-part IPv4", "1.2.3.4.5", "numeric_tld"],
    ["backslash", "github.com\\evil", "invalid_character"],
  ];
  it.each(rejected)("rejects %s", (_label, input, reason) => {
    let error: unknown;
    try {
      validateServerName(input);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidServerNameError);
    expect((error as InvalidServerNameError).reason).toBe(reason);
    expect((error as InvalidServerNameError).code).toBe("INVALID_INPUT");
    // The attacker's string is never echoed back in the error.
    if (typeof input === "string" && input.length > 3) expect((error as Error).message).not.toContain(input);
  });

  const accepted: Array<[string, string, "dns" | "ip"]> = [
    ["api.github.com", "api.github.com", "dns"],
    ["backboard.railway.com", "backboard.railway.com", "dns"],
    ["API.GitHub.COM", "api.github.com", "dns"],
    ["api.github.com.", "api.github.com", "dns"],
    ["xn--bcher-kva.de", "xn--bcher-kva.de", "dns"],
    ["localhost", "localhost", "dns"],
    ["a1-b2.c3.io", "a1-b2.c3.io", "dns"],
    ["127.0.0.1", "127.0.0.1", "ip"],
    ["0.0.0.0", "0.0.0.0", "ip"],
    ["::1", "::1", "ip"],
    ["0:0:0:0:0:0:0:1", "::1", "ip"],
    ["2001:DB8::A", "2001:db8::a", "ip"],
    ["::ffff:127.0.0.1", "::ffff:7f00:1", "ip"],
    [name253, name253, "dns"],
    [`${name253}.`, name253, "dns"],
  ];
  it.each(accepted)("accepts %s", (input, name, kind) => {
    expect(validateServerName(input)).toEqual({ name, kind });
  });

  it("compares names after canonicalisation", () => {
    expect(sameServerName("API.github.com.", "api.github.com")).toBe(true);
    expect(sameServerName("api.github.com", "api.github.co")).toBe(false);
    expect(() => sameServerName("*.github.com", "api.github.com")).toThrow(InvalidServerNameError);
  });
});
