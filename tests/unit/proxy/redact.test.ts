import { Readable } from "node:stream";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { secretForms } from "@/lib/vault/secret-forms";
import { compileSecretPattern, namePatternFor, patternFor, redactHeaderName, redactHeaderValue, redactResponseHeaderName, StreamRedaction, type SecretPattern } from "@/proxy-worker/proxy/redact";

const SECRET = `Xk9"q\\w/e+r=t&y<u>i'o(p)a!s*d~f%g h_j-k.l`;
const pattern = compileSecretPattern(secretForms(SECRET))!;

/** Runs `text` through a stream's redaction in the given chunks, as the relay feeds it. */
async function redactStream(p: SecretPattern, chunks: Buffer[]): Promise<string> {
  const redaction = new StreamRedaction(p);
  const out: Buffer[] = [];
  for await (const chunk of Readable.from(chunks)) out.push(redaction.push(chunk as Buffer));
  out.push(redaction.end());
  return Buffer.concat(out).toString("latin1");
}

/** `text` cut into pieces of the given sizes, taken in turn until it is used up. */
function inChunks(text: Buffer, sizes: readonly number[]): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0, i = 0; at < text.length; i++) {
    const size = sizes[i % sizes.length]!;
    chunks.push(text.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

const encodings: Record<string, (s: string) => string> = {
  raw: (s) => s,
  json: (s) => JSON.stringify(s).slice(1, -1),
  "json, every non-alphanumeric as \\u (lower)": (s) => s.replace(/[^A-Za-z0-9]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`),
  "json, every non-alphanumeric as \\u (upper)": (s) => s.replace(/[^A-Za-z0-9]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0").toUpperCase()}`),
  "json, escaped slashes": (s) => JSON.stringify(s).slice(1, -1).replace(/\//g, "\\/"),
  percent: (s) => encodeURIComponent(s),
  // Letters and digits are never escaped by a real encoder; everything else may be.
  "percent, every non-alphanumeric": (s) => s.replace(/[^A-Za-z0-9]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, "0")}`),
  // A URL carried in another URL's query (a redirect's `next=`, a callback) is encoded twice.
  "percent, twice": (s) => encodeURIComponent(encodeURIComponent(s)),
  "base64 percent-encoded twice": (s) => encodeURIComponent(encodeURIComponent(Buffer.from(s).toString("base64"))),
  "percent, mixed case": (s) => encodeURIComponent(s).replace(/%([0-9A-F])([0-9A-F])/g, (_m, a: string, b: string) => `%${a}${b.toLowerCase()}`),
  form: (s) => encodeURIComponent(s).replace(/%20/g, "+"),
  html: (s) => s.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/'/g, "&#39;"),
  "html, numeric hex": (s) => s.replace(/["&<>']/g, (c) => `&#x${c.charCodeAt(0).toString(16)};`),
  // Go's html/template writes `+` as `&#43;`; OWASP's encoders write `/` as `&#x2F;`, and some
  // encoders write every character but letters and digits as a numeric reference.
  "html, Go (+ as &#43;)": (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&#34;").replace(/'/g, "&#39;").replace(/\+/g, "&#43;"),
  "html, OWASP (/ as &#x2F;)": (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#x27;").replace(/\//g, "&#x2F;"),
  "html, every non-alphanumeric numeric": (s) => s.replace(/[^A-Za-z0-9]/g, (c) => `&#${c.charCodeAt(0)};`),
  "base64 in HTML, + and = as numeric references": (s) => Buffer.from(s).toString("base64").replace(/\+/g, "&#43;").replace(/=/g, "&#61;").replace(/\//g, "&#x2f;"),
  base64: (s) => Buffer.from(s).toString("base64"),
  base64url: (s) => Buffer.from(s).toString("base64url"),
  "base64 at offset 1 of a blob": (s) => Buffer.from(`a${s}bcdef`).toString("base64"),
  "base64 at offset 2 of a blob": (s) => Buffer.from(`ab${s}cdef`).toString("base64"),
  "base64url at offset 1, percent-encoded": (s) => encodeURIComponent(Buffer.from(`a${s}`).toString("base64")),
};

describe("secret carriers (lib/vault/secret-forms)", () => {
  it("lists the secret, base64, base64url and the embedded base64 cores, longest first, no duplicates", () => {
    const forms = secretForms("token-value-1234");
    expect(forms).toContain("token-value-1234");
    expect(forms).toContain(Buffer.from("token-value-1234").toString("base64"));
    expect(forms).toContain(Buffer.from("token-value-1234").toString("base64url"));
    expect(new Set(forms).size).toBe(forms.length);
    expect([...forms].sort((a, b) => b.length - a.length)).toEqual(forms);
  });

  it("adds the password of a Basic user:password secret", () => {
    expect(secretForms("deploy:s3cretpass", { basicAuth: true })).toContain("s3cretpass");
    expect(secretForms("deploy:s3cretpass")).not.toContain("s3cretpass");
  });
});

describe("redaction (proxy-worker/proxy/redact)", () => {
  it.each(Object.entries(encodings))("redacts the %s spelling, keeping the length and the surrounding text", async (_name, encode) => {
    const text = `before ${encode(SECRET)} after`;
    const out = redactHeaderValue(text, pattern);
    expect(out).toHaveLength(text.length);
    expect(out.startsWith("before ")).toBe(true);
    expect(out.endsWith(" after")).toBe(true);
    expect(out).not.toContain(encode(SECRET));
    if (!_name.includes("base64")) expect(out).toBe(`before ${"*".repeat(encode(SECRET).length)} after`);
  });

  it("redacts an occurrence split at every possible chunk boundary", async () => {
    const text = Buffer.from(`{"echo":"${JSON.stringify(SECRET).slice(1, -1)}","x":"${encodeURIComponent(SECRET)}"}`, "latin1");
    for (let cut = 1; cut < text.length; cut++) {
      const out = await redactStream(pattern, [text.subarray(0, cut), text.subarray(cut)]);
      expect(out, `cut at ${cut}`).not.toMatch(/Xk9|q%5C|e\+r|e%2Br/);
      expect(out).toHaveLength(text.length);
    }
  });

  it("redacts one byte at a time, and passes text without the secret through unchanged", async () => {
    const text = Buffer.from(`pre ${Buffer.from(SECRET).toString("base64")} post ${"no secrets here ".repeat(20)}`);
    const out = await redactStream(pattern, [...text].map((b) => Buffer.from([b])));
    expect(out).not.toContain(Buffer.from(SECRET).toString("base64"));
    expect(out.endsWith("no secrets here ".repeat(20))).toBe(true);
    const clean = Buffer.from("nothing to see, just Xk9 and q and w/e".repeat(10));
    expect(await redactStream(pattern, [clean])).toBe(clean.toString("latin1"));
  });

  it("property: any secret, any escaping above, any chunking: never leaks, never changes the length", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: fc.constantFrom(..."abcXYZ019 \"\\/+=&<>'%_-.~!*()"), minLength: 8, maxLength: 24 }).filter((s) => s.trim() === s),
        fc.constantFrom(...Object.keys(encodings)),
        fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 20 }),
        async (secret, encoding, sizes) => {
          const p = compileSecretPattern(secretForms(secret))!;
          const encoded = encodings[encoding]!(secret);
          const text = Buffer.from(`<<${encoded}>>`, "latin1");
          const chunks = inChunks(text, sizes);
          const out = await redactStream(p, chunks);
          expect(out).toHaveLength(text.length);
          if (!encoding.includes("base64")) expect(out.includes(encoded)).toBe(false);
          else expect(out.includes(encoded.slice(4, -4)) && encoded.length > 16).toBe(false);
        },
      ),
      { numRuns: 200, seed: 7 },
    );
  });

  it("stays fast on large responses without the secret", () => {
    const big = "lorem ipsum dolor sit amet ".repeat(40_000);
    const started = performance.now();
    expect(redactHeaderValue(big, pattern)).toBe(big);
    expect(performance.now() - started).toBeLessThan(500);
    // Lines of base64 (a mail, a PEM file) that do not carry the secret: the wrapped anchors' prefilter.
    const lines = `${Buffer.from("x".repeat(600_000)).toString("base64").replace(/.{76}/g, "$&\r\n")}`;
    const again = performance.now();
    expect(redactHeaderValue(lines, pattern)).toBe(lines);
    expect(performance.now() - again).toBeLessThan(500);
  });

  it("property: base64 and hexadecimal wrapped at any line width, in a blob at any offset, any chunking: never leaks", async () => {
    const breaks = ["\r\n", "\n", "\\n", "\\r\\n"];
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: fc.constantFrom(..."abcXYZ019 \"\\/+=&<>'%_-.~!*()"), minLength: 8, maxLength: 40 }).filter((s) => s.trim() === s),
        fc.constantFrom("base64", "base64url", "hex"),
        fc.integer({ min: 0, max: 5 }),
        fc.integer({ min: 1, max: 80 }),
        fc.constantFrom(...breaks),
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 20 }),
        async (secret, encoding, offset, width, eol, sizes) => {
          const p = compileSecretPattern(secretForms(secret))!;
          const encoded = Buffer.from(`${"p".repeat(offset)}${secret}${"s".repeat(3)}`).toString(encoding as BufferEncoding);
          const text = Buffer.from(`<<${(encoded.match(new RegExp(`.{1,${width}}`, "g")) ?? []).join(eol)}>>`, "latin1");
          const chunks = inChunks(text, sizes);
          const out = await redactStream(p, chunks);
          expect(out).toHaveLength(text.length);
          const joined = out.slice(2, -2).split(eol).join("");
          const decoded = Buffer.from(joined.replace(/\*/g, "A"), encoding as BufferEncoding).toString("latin1");
          expect(decoded.includes(secret), `${encoding} at ${width}: ${out}`).toBe(false);
        },
      ),
      { numRuns: 300, seed: 11 },
    );
  });
});

describe("header names (proxy-worker/proxy/redact, namePatternFor)", () => {
  it("finds a carrier whose letters were lower-cased, as a header name arrives", () => {
    const forms = secretForms("sk_live_AbCdEfGh12345678", {});
    const names = namePatternFor(forms)!;
    for (const form of forms.filter((f) => /^[A-Za-z0-9_.!#$%&'*+^`|~-]+$/.test(f))) {
      const name = `x-echo-${form}`.toLowerCase();
      const out = redactHeaderName(name, names);
      expect(out.startsWith("x-echo-"), form).toBe(true);
      expect(out.slice("x-echo-".length), form).toMatch(/^\*+$/);
      expect(out.length).toBe(name.length);
    }
    expect(redactHeaderName("x-unrelated-header", names)).toBe("x-unrelated-header");
  });

  it("redacts a response header's name the same whether or not clean names were remembered", () => {
    const forms = secretForms("sk_live_AbCdEfGh12345678", {});
    const values = patternFor(forms)!;
    const names = namePatternFor(forms)!;
    const both = (name: string) => redactHeaderName(redactHeaderValue(name, values), names);
    const echoed = forms.filter((f) => /^[A-Za-z0-9_.!#$%&'*+^`|~-]+$/.test(f)).map((f) => `x-echo-${f}`.toLowerCase());
    // Twice each, interleaved: a clean name is remembered, a name with a carrier never is.
    for (let round = 0; round < 2; round++) {
      for (const name of ["content-type", "x-unrelated-header", ...echoed]) {
        expect(redactResponseHeaderName(name, values, names)).toBe(both(name));
        expect(redactResponseHeaderName(name, values, null)).toBe(redactHeaderValue(name, values));
      }
    }
    for (const name of echoed) expect(redactResponseHeaderName(name, values, names)).not.toBe(name);
  });
});

describe("wrapped carriers at any line width (proxy-worker/proxy/redact)", () => {
  // An Authorization header's secret, echoed base64- or hex-encoded inside a larger text (an
  // echoed request, `prefix:` + the header), with a line break every `width` characters.
  const WRAP_SECRET = "sk-live-4f9Qz7Lm2Xc8Vb1Nw6Rt3Yp0Ke";
  const wrapPattern = compileSecretPattern(secretForms(WRAP_SECRET))!;
  const carriers: Record<string, { encode: (b: Buffer) => string; decode: (s: string) => Buffer; fill: string }> = {
    base64: { encode: (b) => b.toString("base64"), decode: (s) => Buffer.from(s, "base64"), fill: "A" },
    "base64, unpadded": { encode: (b) => b.toString("base64").replace(/=+$/, ""), decode: (s) => Buffer.from(s, "base64"), fill: "A" },
    base64url: { encode: (b) => b.toString("base64url"), decode: (s) => Buffer.from(s, "base64url"), fill: "A" },
    hex: { encode: (b) => b.toString("hex"), decode: (s) => Buffer.from(s, "hex"), fill: "0" },
    "hex, upper case": { encode: (b) => b.toString("hex").toUpperCase(), decode: (s) => Buffer.from(s, "hex"), fill: "0" },
  };
  // Every line break the wrapped matcher accepts: CRLF, LF, and both inside a JSON string.
  const breaks: Record<string, string> = { CRLF: "\r\n", LF: "\n", "JSON \\r\\n": "\\r\\n", "JSON \\n": "\\n" };
  const wrap = (text: string, width: number, eol: string) => (text.match(new RegExp(`.{1,${width}}`, "g")) ?? []).join(eol);
  /** The secret's bytes at `offset` (0..2: each alignment in base64's 3-byte groups) of the encoded text. */
  const echoed = (offset: number) => Buffer.from(`${"p".repeat(offset)}${WRAP_SECRET}\r\n`, "latin1");
  const leaks = (out: string, eol: string, carrier: (typeof carriers)[string]) => carrier.decode(out.split(eol).join("").replace(/\*/g, carrier.fill)).toString("latin1").includes(WRAP_SECRET);

  describe.each(Object.keys(carriers))("%s", (name) => {
    const carrier = carriers[name]!;
    it.each(Object.keys(breaks).flatMap((eol) => [0, 1, 2].map((offset) => [eol, offset] as const)))("wrapped with %s, secret at offset %i: redacted within one chunk at every width 1..80", async (eol, offset) => {
      const leaked: number[] = [];
      for (let width = 1; width <= 80; width++) {
        const text = `${breaks[eol]}${wrap(carrier.encode(echoed(offset)), width, breaks[eol]!)}${breaks[eol]}`;
        const out = await redactStream(wrapPattern, [Buffer.from(text, "latin1")]);
        expect(out).toHaveLength(text.length);
        if (leaks(out.slice(breaks[eol]!.length, -breaks[eol]!.length), breaks[eol]!, carrier)) leaked.push(width);
        // A header value goes through the same matcher.
        const header = redactHeaderValue(text, wrapPattern);
        if (leaks(header.slice(breaks[eol]!.length, -breaks[eol]!.length), breaks[eol]!, carrier) && !leaked.includes(width)) leaked.push(width);
      }
      expect(leaked, "widths at which the secret came back").toEqual([]);
    });
  });

  it("property: narrow or wide wrapping, any chunking: never leaks across chunk boundaries", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...Object.keys(carriers)),
        fc.constantFrom(...Object.values(breaks)),
        fc.integer({ min: 0, max: 2 }),
        fc.integer({ min: 1, max: 80 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 }),
        async (name, eol, offset, width, sizes) => {
          const carrier = carriers[name]!;
          const text = Buffer.from(`{"echo":"${wrap(carrier.encode(echoed(offset)), width, eol)}"}`, "latin1");
          const chunks = inChunks(text, sizes);
          const out = await redactStream(wrapPattern, chunks);
          expect(out).toHaveLength(text.length);
          expect(leaks(out.slice(9, -2), eol, carrier), `${name} at ${width}: ${out}`).toBe(false);
        },
      ),
      { numRuns: 400, seed: 23 },
    );
  });

  it("redacts a carrier wrapped at every character, split at every possible chunk boundary", async () => {
    for (const eol of ["\r\n", "\\r\\n"]) {
      const encoded = Buffer.from(`:${WRAP_SECRET}`).toString("base64");
      const text = Buffer.from(`{"echo":"${wrap(encoded, 1, eol)}"}`, "latin1");
      for (let cut = 1; cut < text.length; cut++) {
        const out = await redactStream(wrapPattern, [text.subarray(0, cut), text.subarray(cut)]);
        expect(out).toHaveLength(text.length);
        expect(leaks(out.slice(9, -2), eol, carriers.base64!), `cut at ${cut}`).toBe(false);
      }
    }
  });

  it("finds a wrapped carrier that starts with n right after a lone backslash (the \\n taken out is not a line break)", () => {
    const secret = "nQ7zS9xK2lM4vB8rT1wY";
    const p = compileSecretPattern(secretForms(secret))!;
    for (let width = 1; width <= 24; width++) {
      const wrapped = wrap(secret, width, "\\n");
      const text = `path \\${wrapped} end`;
      expect(redactHeaderValue(text, p), `width ${width}`).toBe(`path \\${"*".repeat(wrapped.length)} end`);
    }
  });

  it("passes ordinary text and unrelated base64 or hex with line breaks through unchanged", async () => {
    const prose = "The quick brown fox jumps over the lazy dog; sk-live is a prefix, Bearer tokens are fine. ".repeat(8);
    const blob = Buffer.from(`${WRAP_SECRET.slice(0, 20)}${"unrelated bytes ".repeat(10)}${WRAP_SECRET.slice(20)}`, "latin1");
    for (const eol of Object.values(breaks)) {
      for (let width = 1; width <= 80; width++) {
        for (const text of [wrap(prose, width, eol), wrap(blob.toString("base64"), width, eol), wrap(blob.toString("base64url"), width, eol), wrap(blob.toString("hex"), width, eol)]) {
          expect(redactHeaderValue(text, wrapPattern)).toBe(text);
          expect(await redactStream(wrapPattern, [Buffer.from(text, "latin1")])).toBe(text);
        }
      }
    }
    const json = `{\n  "id": "chatcmpl-1",\n  "choices": [\n    {\n      "message": {\n        "content": "Line one\\nLine two\\r\\nLine three"\n      }\n    }\n  ]\n}\n`;
    expect(await redactStream(wrapPattern, [Buffer.from(json, "latin1")])).toBe(json);
  });
});

describe("event streams through the redaction (proxy-worker/proxy/redact)", () => {
  const STREAM_SECRET = "sk-live-4f9Qz7Lm2Xc8Vb1Nw6Rt3Yp0Ke";
  const streamPattern = compileSecretPattern(secretForms(STREAM_SECRET))!;

  it("passes each event on as it comes: nothing up to a blank line is held back", () => {
    const redaction = new StreamRedaction(streamPattern);
    for (const event of ["data: tick 1\n\n", ": ping\n\n", "event: x\r\ndata: y\r\n\r\n", "data: z\r\r"]) {
      expect(redaction.push(Buffer.from(event)).toString()).toBe(event);
    }
    // An event not yet ended is still held back.
    expect(redaction.push(Buffer.from("data: sk-live-4f9")).toString()).toBe("");
    expect(redaction.push(Buffer.from("Qz7Lm2Xc8Vb1Nw6Rt3Yp0Ke\n\n")).toString()).toBe(`data: ${"*".repeat(STREAM_SECRET.length)}\n\n`);
  });

  it("property: events, blank lines and the secret in any spelling (wrapped too), any chunking: the stream redacts exactly as the whole body at once", async () => {
    const b64 = Buffer.from(`Authorization: Bearer ${STREAM_SECRET}`).toString("base64");
    const pieces = [
      "data: ",
      "\n",
      "\n\n",
      "\r\n",
      "\r\n\r\n",
      "\r\r",
      "\\n",
      "\\n\\n",
      STREAM_SECRET,
      encodeURIComponent(STREAM_SECRET),
      JSON.stringify(STREAM_SECRET),
      b64,
      (b64.match(/.{1,7}/g) ?? []).join("\n"),
      (b64.match(/.{1,5}/g) ?? []).join("\r\n"),
      Buffer.from(STREAM_SECRET).toString("hex"),
      "sk-live-",
      "x",
    ];
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom(...pieces), { minLength: 1, maxLength: 30 }), fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 20 }), async (parts, sizes) => {
        const text = Buffer.from(parts.join(""), "latin1");
        const whole = await redactStream(streamPattern, [text]);
        expect(await redactStream(streamPattern, inChunks(text, sizes))).toBe(whole);
      }),
      { numRuns: 400 },
    );
  });
});
