/**
 * `_method` and header overrides in every spelling and body encoding a framework reads: each is
 * classified with the method it names, and a body whose override cannot be determined is refused.
 * `DELETE /volumes/{id}` is irreversible on the storage example; a plain POST there is a write.
 */
import zlib from "node:zlib";
import { describe, expect, it } from "vitest";
import { classifyRequest, json } from "./support";

const VOLUME = "https://api.storage.example.com/volumes/v1";
const FORM = "application/x-www-form-urlencoded";

function outcome(url: string, body?: string | Uint8Array, contentType?: string | null, headers: Record<string, string> = {}): string {
  const options = { ...(body !== undefined ? { body, contentType: contentType ?? null } : {}), headers: { ...headers, ...(body !== undefined && contentType ? { "content-type": contentType } : {}) } };
  const r = classifyRequest("POST", url, options);
  return r.ok ? r.effect : `rejected:${r.code}`;
}

function multipart(parts: Array<{ head: string; value: string }>, boundary = "XyZ", eol = "\r\n"): string {
  return parts.map((p) => `--${boundary}${eol}${p.head}${eol}${eol}${p.value}${eol}`).join("") + `--${boundary}--${eol}`;
}

describe("_method overrides are found after decoding, in every spelling", () => {
  const forms = [
    "_method=DELETE",
    "%5Fmethod=DELETE",
    "%5fmethod=DELETE",
    "_%6Dethod=DELETE",
    "%5F%6D%65%74%68%6F%64=DELETE",
    "_METHOD=delete",
    "_Method=Delete",
    "_method=%44ELETE",
    "_method=+DELETE+",
    "a=1&%5Fmethod=DELETE&b=2",
    "a=1;_method=DELETE", // `;` separated pairs in older Rack and Python
    ".method=DELETE", // PHP reads "." in a name as "_"
    "%20_method=DELETE", // PHP drops leading spaces
    "_method%00junk=DELETE", // PHP ends a name at NUL
    "x=%FF&_method=DELETE", // not UTF-8 elsewhere does not hide it
  ];
  for (const body of forms) {
    it(`form body ${body}`, () => expect(outcome(VOLUME, body, FORM)).toBe("irreversible"));
    it(`query ?${body}`, () => expect(outcome(`${VOLUME}?${body}`)).toBe("irreversible"));
  }
  it("a form body without a Content-Type (Rack parses it as a form)", () => expect(outcome(VOLUME, "%5Fmethod=DELETE", null)).toBe("irreversible"));
  for (const charset of ["iso-8859-1", "ISO-8859-15", "windows-1252", "us-ascii", "latin1", "utf-8", '"utf-8"']) {
    it(`a form body in charset ${charset}`, () => expect(outcome(VOLUME, "_method=DELETE", `${FORM}; charset=${charset}`)).toBe("irreversible"));
  }
  it("an override header spelled with underscores (CGI and PHP read it as the same)", () => {
    expect(outcome(VOLUME, undefined, undefined, { x_http_method_override: "DELETE" })).toBe("irreversible");
    expect(outcome(VOLUME, undefined, undefined, { "X-Method-Override": "DELETE" })).toBe("irreversible");
  });
  it("the unknown-host classification sees the same overrides", () => {
    expect(outcome("https://random.example.org/things/1", "%5Fmethod=DELETE", FORM)).toBe("destructive");
  });
});

describe("multipart/form-data parts named _method", () => {
  const type = "multipart/form-data; boundary=XyZ";
  const cases: Array<[string, string]> = [
    ["quoted name", 'Content-Disposition: form-data; name="_method"'],
    ["bare name", "Content-Disposition: form-data; name=_method"],
    ["encoded name", 'Content-Disposition: form-data; name="%5Fmethod"'],
    ["escaped quoted name", 'Content-Disposition: form-data; name="\\_method"'],
    ["RFC 5987 name*", "Content-Disposition: form-data; name*=UTF-8''%5Fmethod"],
    ["case", 'content-disposition: FORM-DATA; NAME="_METHOD"'],
  ];
  for (const [name, head] of cases) {
    it(name, () => {
      const body = multipart([{ head: 'Content-Disposition: form-data; name="title"', value: "x" }, { head, value: "DELETE" }]);
      expect(outcome(VOLUME, body, type)).toBe("irreversible");
    });
  }
  it("bare LF line endings", () => {
    expect(outcome(VOLUME, multipart([{ head: 'Content-Disposition: form-data; name="_method"', value: "DELETE" }], "XyZ", "\n"), type)).toBe("irreversible");
  });
  it("a multipart body without _method is a plain POST", () => {
    expect(outcome(VOLUME, multipart([{ head: 'Content-Disposition: form-data; name="file"; filename="a.txt"', value: "_method=DELETE" }]), type)).toBe("write");
  });
});

/**
 * Rack parses multipart/mixed and multipart/related as form data too (PARSEABLE_DATA_MEDIA_TYPES):
 * as multipart with a boundary, as a urlencoded form without one. Rack::MethodOverride (in every
 * non-API Rails app, Sinatra's method_override) then runs a POST as the `_method` it finds there.
 */
describe("multipart/mixed and multipart/related bodies carry _method to Rack", () => {
  for (const subtype of ["mixed", "related", "Mixed"]) {
    it(`multipart/${subtype} with a part named _method`, () => {
      const body = multipart([{ head: 'Content-Disposition: form-data; name="title"', value: "x" }, { head: 'Content-Disposition: form-data; name="_method"', value: "DELETE" }]);
      expect(outcome(VOLUME, body, `multipart/${subtype}; boundary=XyZ`)).toBe("irreversible");
    });
    it(`multipart/${subtype} without a boundary (Rack reads it as a urlencoded form) is refused`, () => {
      expect(outcome(VOLUME, "_method=DELETE", `multipart/${subtype}`)).toBe("rejected:invalid_multipart");
    });
  }
  it("multipart/mixed without _method is a plain POST (the control)", () => {
    expect(outcome(VOLUME, multipart([{ head: 'Content-Disposition: form-data; name="file"; filename="a.txt"', value: "_method=DELETE" }]), "multipart/mixed; boundary=XyZ")).toBe("write");
  });
});

describe("a top-level _method key of a JSON body (Laravel)", () => {
  it("plain and escaped", () => {
    expect(outcome(VOLUME, json({ _method: "DELETE" }), "application/json")).toBe("irreversible");
    expect(outcome(VOLUME, '{"_\\u006dethod":"DELETE"}', "application/json")).toBe("irreversible");
    expect(outcome(VOLUME, json({ _method: "DELETE" }), "application/vnd.api+json")).toBe("irreversible");
  });
  it("nested or absent: a plain POST", () => {
    expect(outcome(VOLUME, json({ data: { _method: "DELETE" } }), "application/json")).toBe("write");
    expect(outcome(VOLUME, json({ method: "x" }), "application/json")).toBe("write");
  });
});

describe("an override that cannot be determined is refused", () => {
  const refused: Array<[string, string | Uint8Array, string, string, Record<string, string>?]> = [
    ["form body in UTF-16", new Uint8Array([...new TextEncoder().encode("_method=DELETE")].flatMap((b) => [b, 0])), `${FORM}; charset=utf-16le`, "unsupported_charset"],
    ["form body in UTF-7", "+AF8-method=DELETE", `${FORM}; charset=utf-7`, "unsupported_charset"],
    // Express's JSON parser decodes UTF-16 when the charset says so; the key is not ASCII bytes then.
    ["JSON body in UTF-16", new Uint8Array(Buffer.from('{"_method":"DELETE"}', "utf16le")), "application/json; charset=utf-16le", "unsupported_charset"],
    ["JSON body in UTF-32", new Uint8Array([...'{"_method":"DELETE"}'].flatMap((c) => [c.charCodeAt(0), 0, 0, 0])), "application/json; charset=utf-32le", "unsupported_charset"],
    ["compressed form body", "_method=DELETE", FORM, "unsupported_content_encoding", { "content-encoding": "gzip" }],
    ["multipart without a boundary", "--x\r\n\r\n", "multipart/form-data", "invalid_multipart"],
    ["truncated multipart", '--XyZ\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE', "multipart/form-data; boundary=XyZ", "invalid_multipart"],
    ["base64 _method part", multipart([{ head: 'Content-Disposition: form-data; name="_method"\r\nContent-Transfer-Encoding: base64', value: "REVMRVRF" }]), "multipart/form-data; boundary=XyZ", "invalid_method_override"],
    ["two _method spellings", "_method=GET&%5Fmethod=DELETE", FORM, "invalid_method_override"],
    ["_method as an array", "_method[]=DELETE", FORM, "invalid_method_override"],
    ["not a method", "_method=DE%20LETE", FORM, "invalid_method_override"],
    ["duplicate JSON keys", '{"_method":"GET","_method":"DELETE"}', "application/json", "invalid_json"],
    ["a case variant of the JSON key", '{"_Method":"DELETE"}', "application/json", "json_key_variant"],
    ["a non-string JSON _method", '{"_method":["DELETE"]}', "application/json", "invalid_method_override"],
    ["a JSON body that does not parse", '{"_method":"DELETE",}', "application/json", "invalid_json"],
    ["a Content-Type that does not parse (Rack would read a form)", "_method=DELETE", `${FORM}, text/plain`, "invalid_method_override"],
  ];
  for (const [name, body, type, code, headers] of refused) {
    it(name, () => expect(outcome(VOLUME, body, type, headers)).toBe(`rejected:${code}`));
  }
});

describe("bodies that cannot carry an override are not refused", () => {
  it("duplicate names other than _method, non-UTF-8 text, other media types", () => {
    expect(outcome(VOLUME, "a=1&a=2", FORM)).toBe("write");
    expect(outcome(`${VOLUME}?tag=a&tag=b`)).toBe("write");
    expect(outcome(VOLUME, "caf%E9=1", `${FORM}; charset=iso-8859-1`)).toBe("write");
    expect(outcome(VOLUME, "_method=DELETE", "text/plain")).toBe("write");
    // Binary uploads: a JPEG (FF D8), a gzip file sent as data (no Content-Encoding), a PNG.
    expect(outcome(VOLUME, new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0x7b]), "application/octet-stream")).toBe("write");
    expect(outcome(VOLUME, new Uint8Array([0x1f, 0x8b, 0x08, 0x00, 0x7b]), "application/octet-stream")).toBe("write");
    expect(outcome(VOLUME, new Uint8Array([0x89, 0x50, 0x4e, 0x47]), null)).toBe("write");
  });
});

describe("a body whose bytes are not the text a server reads is refused, whatever its Content-Type", () => {
  const override = Buffer.from('{"_method":"DELETE"}');
  it("compressed: body-parser inflates gzip, deflate and br before its JSON parser reads `_method`", () => {
    for (const type of ["text/plain", "application/octet-stream", null]) {
      for (const encoding of ["gzip", "deflate", "br", "GZIP", "identity, gzip"]) {
        expect(outcome(VOLUME, zlib.gzipSync(override), type, { "content-encoding": encoding }), `${type} ${encoding}`).toBe("rejected:unsupported_content_encoding");
      }
    }
    // identity is no encoding (the control).
    expect(outcome(VOLUME, "hello", "text/plain", { "content-encoding": "identity" })).toBe("write");
  });

  it("after a byte-order mark, or in UTF-16 or UTF-32 (Python's json.loads reads them all)", () => {
    const utf16le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('{"_method":"DELETE"}', "utf16le")]);
    const utf16be = Buffer.from('{"_method":"DELETE"}', "utf16le").swap16();
    const utf32be = Buffer.concat([...'{"_method":"DELETE"}'].map((c) => Buffer.from([0, 0, 0, c.charCodeAt(0)])));
    for (const type of ["text/plain", "application/octet-stream", null]) {
      for (const body of [Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), override]), utf16le, Buffer.concat([Buffer.from([0xfe, 0xff]), utf16be]), utf16be, utf32be]) {
        expect(outcome(VOLUME, body, type), `${type} ${body.subarray(0, 4).toString("hex")}`).toMatch(/^rejected:|^irreversible$/);
        expect(outcome(VOLUME, body, type)).not.toBe("write");
      }
    }
  });
});

/**
 * Laravel reads the body as JSON when the Content-Type contains `/json` or `+json` anywhere
 * (`Request::isJson()`), and Symfony's getMethod then takes `_method` from it; Express apps
 * configure `express.json({ type })` to take other types, or any. Every body labelled with a type
 * that mentions "json", and every body that starts as a JSON object, is read as JSON.
 */
describe("a JSON _method under every Content-Type a server may read as JSON", () => {
  const types = [
    "text/json",
    "TEXT/JSON",
    "text/json; charset=utf-8",
    "text/plain+json",
    "application/jsonp",
    "application/x-json",
    "Application/JSON",
    "application/json; charset=UTF-8",
    "application/problem+json",
    "application/vnd.api+JSON; charset=utf-8",
    "text/plain; profile=/json", // Laravel's isJson() looks at the whole header
    "text/plain",
    "application/octet-stream",
    "application/x-www-form-urlencoded",
  ];
  for (const type of types) {
    it(`${type}: {"_method":"DELETE"} is the DELETE`, () => expect(outcome(VOLUME, json({ _method: "DELETE" }), type)).toBe("irreversible"));
    it(`${type}: duplicate _method keys are refused`, () => expect(outcome(VOLUME, '{"_method":"GET","_method":"DELETE"}', type)).toBe("rejected:invalid_json"));
  }
  it("without a Content-Type, and after leading whitespace", () => {
    expect(outcome(VOLUME, json({ _method: "DELETE" }), null)).toBe("irreversible");
    expect(outcome(VOLUME, ` \r\n\t${json({ _method: "DELETE" })}`, "text/json")).toBe("irreversible");
  });
  it("escaped key under text/json", () => expect(outcome(VOLUME, '{"_\\u006dethod":"DELETE"}', "text/json")).toBe("irreversible"));
  it("a body labelled JSON that does not parse and may hold the key is refused", () => {
    expect(outcome(VOLUME, '{"_method":"DELETE",}', "text/json")).toBe("rejected:invalid_json");
    expect(outcome(VOLUME, '{"_method":"DELETE",}', "application/x-json")).toBe("rejected:invalid_json");
  });
  it("the controls: no _method, or text that is not JSON, is a plain POST", () => {
    expect(outcome(VOLUME, json({ name: "x" }), "text/json")).toBe("write");
    expect(outcome(VOLUME, "please use the DELETE method", "text/plain")).toBe("write");
    expect(outcome(VOLUME, json([{ _method: "DELETE" }]), "text/json")).toBe("write");
  });
});
