/**
 * The dashboard's Content-Security-Policy, per response (proxy.ts). Scripts run only with this
 * response's nonce (Next.js puts it on its own scripts when it finds the policy in the request),
 * and what they load ('strict-dynamic'); no inline script, no inline event handler, no eval, no
 * plugins, no <base> rewriting, forms post only to the dashboard (and the identity provider the
 * sign-in button redirects to), and no other site may frame a page (clickjacking).
 */
export interface CspOptions {
  nonce: string;
  /** Served over https: ask browsers to upgrade any http subresource. */
  secure: boolean;
  /** Where the single sign-on button's redirect goes, if configured. */
  oidcIssuer?: string;
}

export function buildCsp({ nonce, secure, oidcIssuer }: CspOptions): string {
  const formTargets = ["'self'"];
  if (oidcIssuer) {
    try {
      formTargets.push(new URL(oidcIssuer).origin);
    } catch {
      // A malformed issuer is refused by configuration already.
    }
  }
  const directives = [
    "default-src 'self'",
    `script-src 'self' 'nonce-${nonce}' 'strict-dynamic'`,
    `style-src 'self' 'nonce-${nonce}'`,
    "img-src 'self' data: blob:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    `form-action ${formTargets.join(" ")}`,
    "frame-ancestors 'none'",
    "frame-src 'none'",
    "worker-src 'self'",
    "manifest-src 'self'",
    ...(secure ? ["upgrade-insecure-requests"] : []),
  ];
  return directives.join("; ");
}

/** 128 random bits, base64: unguessable per response. */
export function newNonce(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64");
}
