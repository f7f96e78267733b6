import { AppError } from "@/lib/errors/app-error";
import { agentStripped, gatewayName } from "@/lib/net/agent-headers";

/**
 * A credential is injected as one header, written as a template: `Authorization: Bearer {secret}`.
 *
 * Placeholders: `{secret}` inserts the secret verbatim; `{secret:base64}` inserts the base64 of its
 * UTF-8 bytes. Basic auth is therefore just a template, `Authorization: Basic {secret:base64}`,
 * with the secret stored as `user:password`: one mechanism for every scheme, and what is
 * stored is what the operator typed.
 *
 * Nothing here ever puts the secret into an error message.
 */
export const PLACEHOLDERS = { "{secret}": "raw", "{secret:base64}": "base64" } as const;
export type SecretEncoding = (typeof PLACEHOLDERS)[keyof typeof PLACEHOLDERS];

export interface ParsedTemplate {
  headerName: string;
  /** Text before and after the placeholder in the header value. */
  before: string;
  after: string;
  encoding: SecretEncoding;
}

export const MAX_TEMPLATE_LENGTH = 1024;
export const MAX_SECRET_LENGTH = 8192;

// RFC 9110 token.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Headers a credential may not set. Hop-by-hop and framing headers would let a stored template
 * smuggle or re-frame requests; routing headers would redirect them; method overrides and body
 * encodings would make the upstream execute something other than what the policy judged; and
 * `Proxy-Authorization` belongs to the agent's connection to Bulkhead, never to the upstream.
 */
export const FORBIDDEN_HEADER_NAMES: ReadonlySet<string> = new Set([
  // hop-by-hop (RFC 9110 7.6.1) and their legacy relatives
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "proxy-authorization",
  "proxy-authenticate",
  // framing and body interpretation
  "host",
  "content-length",
  "content-type",
  "content-encoding",
  "expect",
  // routing
  "forwarded",
  "x-forwarded-for",
  "x-forwarded-host",
  "x-forwarded-proto",
  "x-forwarded-port",
  "x-real-ip",
  // method overrides
  "x-http-method",
  "x-http-method-override",
  "x-method-override",
]);

/** Where credentials live: the agent may not send them (the proxy strips its own), a credential may set them. */
const CREDENTIAL_HEADERS: ReadonlySet<string> = new Set(["authorization", "cookie"]);

/**
 * A header a credential may not set: the names above and every header the proxy strips from an
 * agent's request (routing hints such as `X-Original-URL`, `X-Host`, `Via`, the `X-Forwarded-*`
 * family, `Bulkhead-Approval`), each also in the spelling CGI, PHP and IIS read alike
 * (`X_HTTP_Method_Override` is `X-HTTP-Method-Override` there), except the credential headers
 * themselves. A template could set all of these before.
 */
export function forbiddenForCredential(lower: string): boolean {
  const name = gatewayName(lower);
  if (CREDENTIAL_HEADERS.has(name)) return false;
  return FORBIDDEN_HEADER_NAMES.has(lower) || FORBIDDEN_HEADER_NAMES.has(name) || agentStripped(lower);
}

export type TemplateResult = { ok: true; template: ParsedTemplate } | { ok: false; message: string };

const fail = (message: string): TemplateResult => ({ ok: false, message });

export function parseHeaderTemplate(template: unknown): TemplateResult {
  if (typeof template !== "string") return fail("The header template must be text.");
  if (/[\r\n]/.test(template)) return fail("The header template must be a single line (no CR or LF).");
   
  if (/[\u0000-\u001f\u007f]/.test(template)) return fail("The header template must not contain control characters.");
   
  if (/[^\u0000-\u007f]/.test(template)) return fail("The header template must be ASCII.");
  const text = template.trim();
  if (text === "") return fail("Enter a header template, e.g. Authorization: Bearer {secret}.");
  if (text.length > MAX_TEMPLATE_LENGTH) return fail(`The header template must be at most ${MAX_TEMPLATE_LENGTH} characters.`);
  const colon = text.indexOf(":");
  if (colon < 0) return fail("Write the template as Header-Name: value, e.g. Authorization: Bearer {secret}.");
  const headerName = text.slice(0, colon);
  if (!TOKEN.test(headerName)) {
    return fail("The header name must be an HTTP token (letters, digits and !#$%&'*+-.^_`|~) with no space before the colon.");
  }
  if (forbiddenForCredential(headerName.toLowerCase())) return fail(`A credential may not set the ${headerName} header.`);
  const value = text.slice(colon + 1).trim();

  const tokens = [...value.matchAll(/\{[^{}]*\}/g)];
  const unknown = tokens.find((m) => !(m[0] in PLACEHOLDERS));
  if (unknown) return fail(`Unknown placeholder ${unknown[0]}: use {secret} or {secret:base64}.`);
  if (tokens.length !== 1) {
    return fail(`The header value must contain exactly one {secret} or {secret:base64} placeholder (found ${tokens.length}).`);
  }
  const [match] = tokens as [RegExpExecArray];
  const before = value.slice(0, match.index);
  const after = value.slice(match.index + match[0].length);
  if (/[{}]/.test(before + after)) return fail("Braces are only allowed as part of the {secret} placeholder.");
  return { ok: true, template: { headerName, before, after, encoding: PLACEHOLDERS[match[0] as keyof typeof PLACEHOLDERS] } };
}

/** Why a secret cannot be used with a template, or null. Never mentions the secret's content. */
export function secretProblem(secret: unknown, encoding: SecretEncoding): string | null {
  if (typeof secret !== "string" || secret.length === 0) return "Enter the secret.";
  if (secret.length > MAX_SECRET_LENGTH) return `The secret must be at most ${MAX_SECRET_LENGTH} characters.`;
  if (secret.trim() === "") return "The secret must not be blank.";
   
  if (/[\u0000-\u001f\u007f]/.test(secret)) return "The secret must not contain line breaks or other control characters.";
  if (encoding === "raw") {
    if (/[^\u0020-\u007e]/.test(secret)) {
      return "With {secret} the secret goes into the header as is, so it must be printable ASCII; use {secret:base64} otherwise.";
    }
    if (secret !== secret.trim()) return "The secret must not start or end with spaces.";
  }
  return null;
}

/**
 * Renders the header a credential injects. Validates template and secret again, so a row that
 * was edited in the database cannot inject a second header line.
 */
export function renderHeader(template: string, secret: string): { headerName: string; headerValue: string } {
  const parsed = parseHeaderTemplate(template);
  if (!parsed.ok) throw new AppError("INVALID_INPUT", parsed.message);
  const problem = secretProblem(secret, parsed.template.encoding);
  if (problem) throw new AppError("INVALID_INPUT", problem);
  const { headerName, before, after, encoding } = parsed.template;
  const inserted = encoding === "base64" ? Buffer.from(secret, "utf8").toString("base64") : secret;
  return { headerName, headerValue: `${before}${inserted}${after}` };
}

/** The template with the header name's canonical spelling preserved, normalised whitespace. */
export function formatTemplate(t: ParsedTemplate): string {
  const placeholder = t.encoding === "base64" ? "{secret:base64}" : "{secret}";
  return `${t.headerName}: ${t.before}${placeholder}${t.after}`;
}
