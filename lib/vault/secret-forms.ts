/**
 * The carriers a secret can come back in from an upstream that echoes what it was sent: the
 * secret itself (and, for a Basic `user:password` secret, the password alone) and its base64
 * and base64url encodings, standalone or embedded in a larger base64 blob. Base64 of a longer
 * text encodes the secret differently at each byte offset modulo 3, so for each offset the
 * characters that depend on the secret's bytes alone are a form of their own. And its bytes in
 * hexadecimal, in either case (a digest-style echo, a hex dump of what was sent).
 *
 * Text escapings of any of these (JSON `\"`, `\\`, `\/`, `\u00XX`, percent-encoding, form
 * encoding, HTML entities) are matched by the proxy's redactor character by character
 * (proxy-worker/proxy/redact.ts), so they are not listed here.
 */

/** Derived forms shorter than this would redact unrelated text by coincidence. */
export const MIN_DERIVED_FORM_LENGTH = 8;

const toUrlAlphabet = (b64: string) => b64.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

/** Base64 characters that depend only on `secret`'s bytes when it starts at byte `offset` (mod 3) of a longer text. */
function embeddedBase64(secret: Buffer, offset: 0 | 1 | 2): string {
  const total = offset + secret.length;
  const encoded = Buffer.concat([Buffer.alloc(offset), secret]).toString("base64");
  // Groups of 3 bytes become 4 characters; a group that also holds bytes from outside is dropped.
  const first = offset === 0 ? 0 : 4;
  const last = Math.floor(total / 3) * 4;
  return encoded.slice(first, last);
}

/** Every carrier of `secret` worth redacting, longest first, without duplicates. */
export function secretForms(secret: string, options: { basicAuth?: boolean } = {}): string[] {
  const raw = [secret];
  // `{secret:base64}` carries Basic credentials `user:password`: the password alone is secret too.
  const colon = secret.indexOf(":");
  if (options.basicAuth && colon >= 0 && secret.length - colon - 1 >= 4) raw.push(secret.slice(colon + 1));
  const forms = new Set<string>(raw.filter((s) => s.length >= 4));
  for (const text of raw) {
    const bytes = Buffer.from(text, "utf8");
    const b64 = bytes.toString("base64");
    for (const form of [b64, b64.replace(/=+$/, ""), toUrlAlphabet(b64)]) forms.add(form);
    const hex = bytes.toString("hex");
    forms.add(hex);
    forms.add(hex.toUpperCase());
    for (const offset of [0, 1, 2] as const) {
      const core = embeddedBase64(bytes, offset);
      if (core.length < MIN_DERIVED_FORM_LENGTH) continue;
      forms.add(core);
      forms.add(toUrlAlphabet(core));
    }
  }
  return [...forms].filter((f) => f === secret || f.length >= MIN_DERIVED_FORM_LENGTH || raw.includes(f)).sort((a, b) => b.length - a.length);
}

/**
 * The `user:password` a raw `{secret}` stands for when it is written after `Basic ` (the secret
 * stored already base64-encoded, as many services document Basic credentials), or null. An
 * upstream that decodes Basic credentials may say them back decoded, so that text and the
 * password alone are carriers too.
 */
export function preEncodedBasicCredentials(secret: string, before: string): string | null {
  if (!/(^|\s)basic\s+$/i.test(before) || !/^[A-Za-z0-9+/]+={0,2}$/.test(secret)) return null;
  const bytes = Buffer.from(secret, "base64");
  if (bytes.toString("base64").replace(/=+$/, "") !== secret.replace(/=+$/, "")) return null;
  const text = bytes.toString("utf8");
  if (!text.includes(":") || /[\u0000-\u001f\u007f\ufffd]/.test(text)) return null;
  return text;
}

/**
 * Every carrier of a credential's secret, given how its template injects it (see secretForms).
 * What goes on the wire is a carrier of its own too, with its own encodings: an upstream that
 * echoes the request it was sent base64- or hex-encoded (a dump, a request log) encodes the
 * `{secret:base64}` value again, which hides it from the carriers of the secret alone.
 */
export function credentialSecretForms(secret: string, template: { encoding: "raw" | "base64"; before: string } | null): string[] {
  const forms = new Set(secretForms(secret, { basicAuth: template?.encoding === "base64" }));
  if (template?.encoding === "base64") for (const form of secretForms(Buffer.from(secret, "utf8").toString("base64"))) forms.add(form);
  const decoded = template?.encoding === "raw" ? preEncodedBasicCredentials(secret, template.before) : null;
  if (decoded) for (const form of secretForms(decoded, { basicAuth: true })) forms.add(form);
  return [...forms].sort((a, b) => b.length - a.length);
}
