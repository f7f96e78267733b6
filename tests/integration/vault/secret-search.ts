/**
 * Every spelling of a secret an attacker might grep a dump for: the secret itself, its base64,
 * base64url and hex, and every 8-character window of each (so partial leaks are caught too).
 */
export function secretNeedles(secret: string, window = 8): string[] {
  const bytes = Buffer.from(secret, "utf8");
  const forms = [secret, bytes.toString("base64").replace(/=+$/, ""), bytes.toString("base64url"), bytes.toString("hex")];
  const needles = new Set<string>();
  for (const form of forms) {
    for (let i = 0; i + window <= form.length; i++) needles.add(form.slice(i, i + window));
  }
  return [...needles];
}

/** The needles of `secret` found in `haystack` (empty when nothing leaked). */
export function leaks(haystack: string, secret: string): string[] {
  return secretNeedles(secret).filter((n) => haystack.includes(n));
}

/** A secret long and random enough that an accidental 8-character match is negligible. */
export function randomSecret(prefix = ""): string {
  return `${prefix}${Buffer.from(crypto.getRandomValues(new Uint8Array(30))).toString("base64url")}`;
}
