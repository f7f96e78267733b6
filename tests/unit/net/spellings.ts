/**
 * Every way an attacker can write one IPv4 address: the legacy forms a URL parser accepts
 * (1–4 parts, each decimal, octal or hex), and the IPv6 forms that carry it.
 */
import fc from "fast-check";

export type Radix = "dec" | "oct" | "hex" | "HEX";

export function writeNumber(value: number, radix: Radix, padding = 0): string {
  const zeros = "0".repeat(padding);
  if (radix === "dec") return String(value);
  if (radix === "oct") return `0${zeros}${value.toString(8)}`;
  return `${radix === "HEX" ? "0X" : "0x"}${zeros}${radix === "HEX" ? value.toString(16).toUpperCase() : value.toString(16)}`;
}

export function octetsOf(value: number): [number, number, number, number] {
  return [Math.floor(value / 2 ** 24) % 256, Math.floor(value / 2 ** 16) % 256, Math.floor(value / 2 ** 8) % 256, value % 256];
}

export function dotted(value: number): string {
  return octetsOf(value).join(".");
}

/** The legacy IPv4 spellings of `value` with `parts` parts (the last part holds the remaining bytes). */
export function legacyIpv4(value: number, parts: 1 | 2 | 3 | 4, radixes: Radix[], padding: number, trailingDot: boolean): string {
  const octets = octetsOf(value);
  const leading = octets.slice(0, parts - 1);
  const rest = octets.slice(parts - 1).reduce((acc, o) => acc * 256 + o, 0);
  const written = [...leading, rest].map((n, i) => writeNumber(n, radixes[i % radixes.length] as Radix, padding));
  return written.join(".") + (trailingDot ? "." : "");
}

function hexGroups(value: number): string {
  return `${Math.floor(value / 65536).toString(16)}:${(value % 65536).toString(16)}`;
}

/** IPv6 forms that carry `value`; each must be refused whatever `value` is. */
export function embeddedIpv6(value: number): { form: string; text: string }[] {
  const inverted = 0xffffffff - value;
  const [a, b, c, d] = octetsOf(value).map((o) => o.toString(16).padStart(2, "0"));
  return [
    { form: "IPv4-mapped dotted", text: `[::ffff:${dotted(value)}]` },
    { form: "IPv4-mapped hex", text: `[::ffff:${hexGroups(value)}]` },
    { form: "IPv4-mapped expanded upper-case", text: `[0:0:0:0:0:FFFF:${hexGroups(value).toUpperCase()}]` },
    { form: "IPv4-translated", text: `[::ffff:0:${dotted(value)}]` },
    { form: "NAT64", text: `[64:ff9b::${dotted(value)}]` },
    { form: "NAT64 hex", text: `[64:ff9b::${hexGroups(value)}]` },
    { form: "6to4", text: `[2002:${a}${b}:${c}${d}::1]` },
    { form: "Teredo", text: `[2001:0:4136:e378:8000:63bf:${hexGroups(inverted)}]` },
  ];
}

export const radix = fc.constantFrom<Radix>("dec", "oct", "hex", "HEX");

/** One legacy spelling of `value`, chosen by fast-check. */
export function legacySpelling(value: number): fc.Arbitrary<string> {
  return fc
    .record({
      parts: fc.constantFrom<1 | 2 | 3 | 4>(1, 2, 3, 4),
      radixes: fc.array(radix, { minLength: 1, maxLength: 4 }),
      padding: fc.nat({ max: 3 }),
      trailingDot: fc.boolean(),
    })
    .map(({ parts, radixes, padding, trailingDot }) => legacyIpv4(value, parts, radixes, padding, trailingDot));
}
