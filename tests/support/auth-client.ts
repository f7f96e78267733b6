import { Auth } from "@auth/core";
import type { NextAuthConfig } from "next-auth";
import type { OidcProvider } from "./oidc-provider";

export interface SetCookie {
  name: string;
  value: string;
  attributes: Map<string, string>;
  raw: string;
}

export function parseSetCookie(raw: string): SetCookie {
  const [pair = "", ...parts] = raw.split(";");
  const eq = pair.indexOf("=");
  const attributes = new Map<string, string>();
  for (const part of parts) {
    const [k = "", ...v] = part.trim().split("=");
    attributes.set(k.toLowerCase(), v.join("="));
  }
  return { name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim(), attributes, raw };
}

/**
 * Drives the dashboard's next-auth configuration through @auth/core directly, the way a browser
 * would through /api/auth: a cookie jar, form posts with the CSRF token, redirects followed by
 * hand (including the hop through the identity provider).
 */
export class AuthClient {
  readonly jar = new Map<string, string>();
  readonly setCookies: SetCookie[] = [];

  constructor(
    /** The configuration, or how the dashboard builds it for each request (lib/auth/next-auth.ts). */
    private readonly config: NextAuthConfig | ((request: Request) => NextAuthConfig),
    readonly base = "http://127.0.0.1:3999",
    private readonly headers: Record<string, string> = {},
  ) {}

  async request(path: string, init: { method?: string; form?: Record<string, string>; headers?: Record<string, string> } = {}): Promise<Response> {
    const headers = new Headers({ ...this.headers, ...init.headers });
    if (this.jar.size > 0) headers.set("cookie", [...this.jar].map(([k, v]) => `${k}=${v}`).join("; "));
    let body: string | undefined;
    if (init.form) {
      headers.set("content-type", "application/x-www-form-urlencoded");
      body = new URLSearchParams(init.form).toString();
    }
    const request = new Request(new URL(path, this.base), { method: init.method ?? (body ? "POST" : "GET"), headers, body });
    const response = await Auth(request, typeof this.config === "function" ? this.config(request) : this.config);
    for (const raw of response.headers.getSetCookie()) {
      const cookie = parseSetCookie(raw);
      this.setCookies.push(cookie);
      if (cookie.value === "" || cookie.attributes.get("max-age") === "0") this.jar.delete(cookie.name);
      else this.jar.set(cookie.name, cookie.value);
    }
    return response;
  }

  async csrfToken(): Promise<string> {
    const response = await this.request("/api/auth/csrf");
    return ((await response.json()) as { csrfToken: string }).csrfToken;
  }

  async signInWithPassword(email: string, password: string): Promise<Response> {
    const csrfToken = await this.csrfToken();
    return this.request("/api/auth/callback/password", { form: { csrfToken, email, password, callbackUrl: `${this.base}/agents` } });
  }

  /** Starts an OIDC sign-in, lets the provider log in whoever it was told to, and returns the callback's answer. */
  async signInWithOidc(provider: OidcProvider, authorizationParams: Record<string, string> = {}): Promise<Response> {
    const csrfToken = await this.csrfToken();
    const query = new URLSearchParams(authorizationParams).toString();
    const start = await this.request(`/api/auth/signin/oidc${query ? `?${query}` : ""}`, { form: { csrfToken, callbackUrl: `${this.base}/agents` } });
    const authorize = start.headers.get("location") ?? "";
    if (!authorize.startsWith(provider.issuer)) throw new Error(`sign-in did not redirect to the provider: ${start.status} ${authorize}`);
    const back = await fetch(authorize, { redirect: "manual" });
    const callback = new URL(back.headers.get("location") ?? "", this.base);
    return this.request(`${callback.pathname}${callback.search}`);
  }

  cookie(name: string): SetCookie | undefined {
    return [...this.setCookies].reverse().find((c) => c.name === name);
  }
}
