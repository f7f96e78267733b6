/**
 * The agent's task token, from the explicit listener's Proxy-Authorization header: `Bearer
 * <token>`, or `Basic base64(user:token)` for clients that only support `user:pass@proxy`.
 */
export function tokenFromProxyAuthorization(header: string | string[] | undefined): string | null {
  if (header === undefined) return null;
  if (Array.isArray(header)) return null; // several credentials: ambiguous, refuse
  const m = /^([A-Za-z]+) +([^\s]+)\s*$/.exec(header);
  if (!m) return null;
  const scheme = m[1]!.toLowerCase();
  const value = m[2]!;
  if (scheme === "bearer") return value;
  if (scheme === "basic") {
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value)) return null;
    const decoded = Buffer.from(value, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) return null;
    const password = decoded.slice(colon + 1);
    return password.length > 0 ? password : null;
  }
  return null;
}

const HOW = "send it as Bearer TOKEN, or as the proxy password (http://bulkhead:TOKEN@proxy:port)";

/**
 * Why tokenFromProxyAuthorization found no token, for the 407's reason: an agent's operator who
 * wrote the token as the proxy's user name (`http://TOKEN@proxy:8080`, as some proxies take it)
 * was told only that a token is required, though one was sent. Never echoes the header.
 */
export function missingTokenReason(header: string | string[] | undefined): string {
  if (header === undefined) return `a task token is required in Proxy-Authorization: ${HOW}`;
  if (Array.isArray(header)) return "Proxy-Authorization was sent more than once; send it once, with the task token";
  const m = /^([A-Za-z]+) +([^\s]+)\s*$/.exec(header);
  const scheme = m?.[1]!.toLowerCase();
  if (!m || (scheme !== "bearer" && scheme !== "basic")) return `Proxy-Authorization holds no task token (it must be Bearer or Basic): ${HOW}`;
  if (scheme === "basic" && /^[A-Za-z0-9+/]+={0,2}$/.test(m[2]!)) {
    const decoded = Buffer.from(m[2]!, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon > 0 && colon === decoded.length - 1) return `Proxy-Authorization has a user name and an empty password: the task token goes in the password, not the user name; ${HOW}`;
  }
  return `Proxy-Authorization holds no task token: ${HOW}`;
}

/** The explicit listener's identity for a request: its token, or why it has none. */
export function tokenIdentity(header: string | string[] | undefined): { kind: "token"; token: string | null; missing?: string } {
  const token = tokenFromProxyAuthorization(header);
  return token ? { kind: "token", token } : { kind: "token", token: null, missing: missingTokenReason(header) };
}

/**
 * Every Proxy-Authorization header the client sent: one value, an array when there were several,
 * or undefined. Node's parser keeps only the first in `req.headers` and drops the others without
 * a word, so read from there a request with two credentials acted under the first (a CONNECT
 * opened its tunnel with it); two are ambiguous and refused (`tokenIdentity`).
 */
export function proxyAuthorizationOf(req: { headers: { "proxy-authorization"?: string | string[] }; rawHeaders: readonly string[] }): string | string[] | undefined {
  const first = req.headers["proxy-authorization"];
  if (first === undefined) return undefined;
  const values: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]!.length === 19 && req.rawHeaders[i]!.toLowerCase() === "proxy-authorization") values.push(req.rawHeaders[i + 1] ?? "");
  }
  return values.length > 1 ? values : first;
}
