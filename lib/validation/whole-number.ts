import { z } from "zod";

/**
 * A whole number from min to max, sent as a JSON number or as decimal digits (a form sends every
 * field as text; white space around them is allowed). Anything else is refused with `type`.
 * `z.coerce.number()` goes through `Number()`, which guesses: `true` is 1, `[443]` is 443, `"0x50"`
 * is 80, `"1e2"` is 100, `"0b1"` is 1 and `null` is 0. Malformed input gets a 400, never a guess.
 */
export function wholeNumber(min: number, max: number, messages: { type: string; range: string }) {
  return z.preprocess(
    (value) => (typeof value === "string" && /^\s*\d{1,15}\s*$/.test(value) ? Number(value) : value),
    z.number({ error: messages.type }).int(messages.type).min(min, messages.range).max(max, messages.range),
  );
}
