/**
 * A body that names a route's resource parameter again (`POST /volumes/vol_stg/restore` with `id`
 * = vol_prod): Laravel merges body fields into the bag `$request->id` reads before the route's
 * parameter, whatever body it parsed them from (a JSON body, a form, a multipart form). Both
 * resources are judged; a body whose fields cannot be read exactly is refused, never skipped.
 */
import zlib from "node:zlib";
import { describe, expect, it } from "vitest";
import { restConfigSchema } from "@/lib/semantics/descriptors/schema";
import { classifyRest } from "@/lib/semantics/rest";
import { canonical } from "./support";

const config = restConfigSchema.parse({
  routes: [
    { method: "POST", path: "/volumes/{id}/restore", operation: "volumes.restore", effect: "irreversible", resource: "{id}" },
    { method: "DELETE", path: "/volumes/{id}", operation: "volumes.delete", effect: "irreversible", resource: "{id}" },
  ],
});

const RESTORE = "https://api.storage.example.com/volumes/vol_stg/restore";
const BOTH = [
  ["volumes.restore", "vol_stg"],
  ["volumes.restore", "vol_prod"],
];
const PATH_ONLY = [["volumes.restore", "vol_stg"]];

function judged(body: string | Uint8Array, contentType: string | null, headers: Record<string, string> = {}, url = RESTORE, method = "POST"): unknown {
  const r = classifyRest(canonical(method, url, { body, contentType, headers }), config);
  return r.ok ? r.drafts.map((d) => [d.operation, d.resource]) : `rejected:${r.code}`;
}

function multipart(parts: Array<{ head: string; value: string }>, boundary = "XX", eol = "\r\n"): string {
  return parts.map((p) => `--${boundary}${eol}${p.head}${eol}${eol}${p.value}${eol}`).join("") + `--${boundary}--${eol}`;
}

const MP = "multipart/form-data; boundary=XX";

describe("multipart/form-data fields that name the path parameter", () => {
  const heads: Array<[string, string]> = [
    ["quoted name", 'Content-Disposition: form-data; name="id"'],
    ["bare name", "Content-Disposition: form-data; name=id"],
    ["header and parameter case", 'content-disposition: FORM-DATA; NAME="id"'],
    ["RFC 5987 name*", "Content-Disposition: form-data; name*=UTF-8''id"],
    ["escaped quoted name", 'Content-Disposition: form-data; name="\\id"'],
    ["encoded name", 'Content-Disposition: form-data; name="%69d"'],
    ["a file part (Laravel's all() merges files too)", 'Content-Disposition: form-data; name="id"; filename="x.txt"\r\nContent-Type: text/plain'],
    ["PHP's leading-space mangling", 'Content-Disposition: form-data; name=" id"'],
  ];
  for (const [name, head] of heads) {
    it(`${name}: both volumes are judged`, () => {
      const body = multipart([{ head: 'Content-Disposition: form-data; name="note"', value: "x" }, { head, value: "vol_prod" }]);
      expect(judged(body, MP)).toEqual(BOTH);
    });
  }
  it("the brief's example, byte for byte", () => {
    expect(judged('--XX\r\nContent-Disposition: form-data; name="id"\r\n\r\nvol_prod\r\n--XX--\r\n', MP)).toEqual(BOTH);
  });
  it("LF-only line ends", () => {
    expect(judged(multipart([{ head: 'Content-Disposition: form-data; name="id"', value: "vol_prod" }], "XX", "\n"), MP)).toEqual(BOTH);
  });
  it("a preamble before the first delimiter", () => {
    expect(judged(`preamble text\r\n${multipart([{ head: 'Content-Disposition: form-data; name="id"', value: "vol_prod" }])}`, MP)).toEqual(BOTH);
  });
  for (const type of ['Multipart/Form-Data; boundary="XX"', "multipart/form-data; charset=utf-8; boundary=XX", "multipart/mixed; boundary=XX", "multipart/related; boundary=XX"]) {
    it(`Content-Type ${type}`, () => {
      expect(judged(multipart([{ head: 'Content-Disposition: form-data; name="id"', value: "vol_prod" }]), type)).toEqual(BOTH);
    });
  }
  it("DELETE /volumes/vol_stg with a multipart id", () => {
    const body = multipart([{ head: 'Content-Disposition: form-data; name="id"', value: "vol_prod" }]);
    expect(judged(body, MP, {}, "https://api.storage.example.com/volumes/vol_stg", "DELETE")).toEqual([
      ["volumes.delete", "vol_stg"],
      ["volumes.delete", "vol_prod"],
    ]);
  });
  it("two parts named id: both values are judged (servers keep the first or the last)", () => {
    for (const values of [["vol_stg", "vol_prod"], ["vol_prod", "vol_stg"], ["vol_prod", "vol_other"]]) {
      const body = multipart(values.map((value) => ({ head: 'Content-Disposition: form-data; name="id"', value })));
      const expected = [["volumes.restore", "vol_stg"], ...values.filter((v) => v !== "vol_stg").map((v) => ["volumes.restore", v])];
      expect(judged(body, MP)).toEqual(expected);
    }
  });
  it("repeated array parts (files[], tags[]) and repeated other fields are an ordinary upload", () => {
    const body = multipart([
      { head: 'Content-Disposition: form-data; name="files[]"; filename="a.txt"', value: "a" },
      { head: 'Content-Disposition: form-data; name="files[]"; filename="b.txt"', value: "b" },
      { head: 'Content-Disposition: form-data; name="tag"', value: "x" },
      { head: 'Content-Disposition: form-data; name="tag"', value: "y" },
    ]);
    expect(judged(body, MP)).toEqual(PATH_ONLY);
  });
  it("the controls: the same id, other names, an array name add nothing", () => {
    expect(judged(multipart([{ head: 'Content-Disposition: form-data; name="id"', value: "vol_stg" }]), MP)).toEqual(PATH_ONLY);
    expect(judged(multipart([{ head: 'Content-Disposition: form-data; name="volume"', value: "vol_prod" }]), MP)).toEqual(PATH_ONLY);
    expect(judged(multipart([{ head: 'Content-Disposition: form-data; name="ids"', value: "vol_prod" }]), MP)).toEqual(PATH_ONLY);
    expect(judged(multipart([{ head: 'Content-Disposition: form-data; name="note"', value: "name=\"id\"\r\n\r\nvol_prod" }]), MP)).toEqual(PATH_ONLY);
  });
  it("a compressed multipart body is refused", () => {
    expect(judged(multipart([{ head: 'Content-Disposition: form-data; name="id"', value: "vol_prod" }]), MP, { "content-encoding": "gzip" })).toMatch(/^rejected:/);
  });
});

describe("JSON bodies under every Content-Type a server may read as JSON", () => {
  const types = ["application/json", "APPLICATION/JSON", "application/json; charset=utf-8", "text/json", "text/plain+json", "application/jsonp", "application/x-json", "application/vnd.api+json; charset=UTF-8", "text/plain", null];
  for (const type of types) {
    it(`${type ?? "no Content-Type"}: the body's id is judged too`, () => expect(judged('{"id":"vol_prod"}', type)).toEqual(BOTH));
    it(`${type ?? "no Content-Type"}: duplicate keys are refused, never read as no parameters`, () =>
      expect(judged('{"id":"vol_stg","id":"vol_prod"}', type)).toBe("rejected:invalid_json"));
  }
  it("a JSON body in a charset it cannot be read exactly in is refused", () => {
    expect(judged('{"id":"vol_prod"}', "application/json; charset=iso-8859-1")).toMatch(/^rejected:/);
    expect(judged('{"id":"vol_prod"}', "text/json; charset=windows-1252")).toMatch(/^rejected:/);
  });
  it("a form field given twice is refused", () => {
    expect(judged("id=vol_stg&id=vol_prod", "application/x-www-form-urlencoded")).toBe("rejected:ambiguous_parameter");
  });
  it("the controls: plain text and other bodies that are neither JSON nor a form add nothing", () => {
    expect(judged("id=vol_prod", "text/plain")).toEqual(PATH_ONLY);
    expect(judged("not json", "application/octet-stream")).toEqual(PATH_ONLY);
    expect(judged('{"id":"vol_stg"}', "text/json")).toEqual(PATH_ONLY);
  });
});

describe("a body that names the parameter in bytes that are not plain text is refused, whatever its Content-Type", () => {
  const named = '{"id":"vol_prod"}';
  it("compressed (body-parser inflates it before parsing)", () => {
    for (const type of ["text/plain", "application/octet-stream", null]) {
      expect(judged(zlib.gzipSync(named), type, { "content-encoding": "gzip" }), String(type)).toBe("rejected:unsupported_content_encoding");
      expect(judged(zlib.deflateSync(named), type, { "content-encoding": "deflate" }), String(type)).toBe("rejected:unsupported_content_encoding");
    }
  });

  it("after a byte-order mark, or in UTF-16", () => {
    for (const type of ["text/plain", null]) {
      expect(judged(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(named)]), type), String(type)).toMatch(/^rejected:/);
      expect(judged(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(named, "utf16le")]), type), String(type)).toMatch(/^rejected:/);
      expect(judged(Buffer.from(named, "utf16le").swap16(), type), String(type)).toMatch(/^rejected:/);
    }
  });

  it("binary data that merely contains the bytes is not read (the control)", () => {
    expect(judged(Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.from(named)]), "image/jpeg")).toEqual(PATH_ONLY);
    expect(judged("id=vol_prod", "text/plain")).toEqual(PATH_ONLY);
  });
});
