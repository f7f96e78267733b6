/**
 * Makes agent-controlled values storable in audit_events without losing the event: PostgreSQL
 * refuses NUL in text and `\u0000` in jsonb, and jsonb refuses UTF-16 halves without their
 * partner; values JSON cannot express (BigInt, cycles) and oversized ones are cut down. Every
 * change is listed (path and what), so a reader of the audit sees that the stored value is not
 * exactly what was sent. Pure: no I/O.
 */

export type SanitiseChange = "nul" | "lone_surrogate" | "truncated" | "not_json" | "too_deep" | "dropped";

export interface SanitiseNote {
  /** Where, e.g. `reason`, `data.actions[0].detail.arguments.name`, `data{key}`. */
  path: string;
  what: SanitiseChange;
}

export interface JsonLimits {
  /** Longest string kept whole (characters). */
  maxStringChars: number;
  /** Longest key kept whole (characters). */
  maxKeyChars: number;
  /** Longest array kept whole. */
  maxArrayItems: number;
  /** Most keys kept of one object. */
  maxKeys: number;
  maxDepth: number;
  /** Values visited in all: the walk's cost is bounded whatever the agent sent. */
  maxNodes: number;
}

export const DEFAULT_JSON_LIMITS: JsonLimits = { maxStringChars: 16 * 1024, maxKeyChars: 256, maxArrayItems: 1_000, maxKeys: 1_000, maxDepth: 32, maxNodes: 20_000 };
/** The second, tighter pass for data that is still too large after the first. */
export const TIGHT_JSON_LIMITS: JsonLimits = { maxStringChars: 512, maxKeyChars: 128, maxArrayItems: 50, maxKeys: 100, maxDepth: 12, maxNodes: 2_000 };

// NUL, and UTF-16 halves without their partner.
const NUL = /\u0000/g;
const LONE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/** In JSON text: an unescaped \u0000 or \udXXX escape (JSON.stringify writes lone surrogates so). */
export const UNSTORABLE_JSON = /(?:^|[^\\])(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i;

/**
 * Whether JSON text holds no escape PostgreSQL's jsonb refuses (UNSTORABLE_JSON). Most text has no
 * `\u` escape at all, which two scans find faster than the pattern does; same answer always.
 */
export function isStorableJson(json: string): boolean {
  return (json.indexOf("\\u") < 0 && json.indexOf("\\U") < 0) || !UNSTORABLE_JSON.test(json);
}

/** How an input that isStorableText refuses is described (after the input's name). */
export const UNSTORABLE_TEXT_MESSAGE = "must not contain NUL characters (\\u0000) or unpaired UTF-16 surrogates";

export function isStorableText(value: string): boolean {
  return !UNSTORABLE.test(value);
}

/** Replaces NUL and lone surrogates with U+FFFD and cuts to `maxChars`; notes what it did. */
export function sanitiseText(value: string, maxChars: number, path: string, notes: SanitiseNote[]): string {
  let out = value;
  if (UNSTORABLE.test(out)) {
    if (out.includes("\u0000")) {
      notes.push({ path, what: "nul" });
      out = out.replace(NUL, "\ufffd");
    }
    if (UNSTORABLE.test(out)) {
      notes.push({ path, what: "lone_surrogate" });
      out = out.replace(LONE, "\ufffd");
    }
  }
  if (out.length > maxChars) {
    notes.push({ path, what: "truncated" });
    // Never cut a surrogate pair in half (that would make a new lone surrogate).
    let end = maxChars;
    if (/[\ud800-\udbff]/.test(out[end - 1] ?? "")) end--;
    out = `${out.slice(0, end)}…[${out.length - end} more characters]`;
  }
  return out;
}

/** A deep copy of `value` that JSON.stringify turns into text jsonb accepts, within `limits`. */
export function sanitiseJson(value: unknown, limits: JsonLimits, path: string, notes: SanitiseNote[]): unknown {
  const seen = new Set<object>();
  let nodes = 0;
  let budgetNoted = false;
  const walk = (v: unknown, p: string, depth: number): unknown => {
    if (++nodes > limits.maxNodes) {
      if (!budgetNoted) notes.push({ path: p, what: "truncated" });
      budgetNoted = true;
      return "[cut: too many values]";
    }
    if (v === null || typeof v === "boolean") return v;
    if (typeof v === "number") {
      if (Number.isFinite(v)) return v;
      notes.push({ path: p, what: "not_json" });
      return null;
    }
    if (typeof v === "string") return sanitiseText(v, limits.maxStringChars, p, notes);
    if (typeof v === "bigint") {
      notes.push({ path: p, what: "not_json" });
      return v.toString();
    }
    if (typeof v !== "object") {
      // undefined, functions, symbols: what JSON.stringify would drop.
      notes.push({ path: p, what: "dropped" });
      return null;
    }
    if (seen.has(v)) {
      notes.push({ path: p, what: "not_json" });
      return "[circular]";
    }
    if (depth >= limits.maxDepth) {
      notes.push({ path: p, what: "too_deep" });
      return "[too deep]";
    }
    if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
    if (ArrayBuffer.isView(v)) return { base64: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64") };
    seen.add(v);
    try {
      if (Array.isArray(v)) {
        const items = v.length > limits.maxArrayItems ? v.slice(0, limits.maxArrayItems) : v;
        const out = items.map((x, i) => walk(x, `${p}[${i}]`, depth + 1));
        if (v.length > limits.maxArrayItems) {
          notes.push({ path: p, what: "truncated" });
          out.push(`…[${v.length - limits.maxArrayItems} more items]`);
        }
        return out;
      }
      const out: Record<string, unknown> = {};
      const entries = Object.entries(v);
      if (entries.length > limits.maxKeys) {
        notes.push({ path: p, what: "truncated" });
        out["…"] = `${entries.length - limits.maxKeys} more keys`;
        entries.length = limits.maxKeys;
      }
      for (const [key, item] of entries) {
        if (item === undefined) continue;
        let k = sanitiseText(key, limits.maxKeyChars, `${p}{${key.slice(0, 32)}}`, notes);
        // Two keys that sanitise alike must both survive.
        for (let n = 2; Object.prototype.hasOwnProperty.call(out, k); n++) k = `${k}#${n}`;
        out[k] = walk(item, `${p}.${k.slice(0, 64)}`, depth + 1);
      }
      return out;
    } finally {
      seen.delete(v);
    }
  };
  return walk(value, path, 0);
}

/** Notes as stored in an event (`data.sanitised`): the first few, and how many in all. */
export function summariseNotes(notes: SanitiseNote[], max = 20): { changes: SanitiseNote[]; count: number } {
  return { changes: notes.slice(0, max).map((n) => ({ path: sanitiseText(n.path, 200, "", []), what: n.what })), count: notes.length };
}
