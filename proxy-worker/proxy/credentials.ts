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
