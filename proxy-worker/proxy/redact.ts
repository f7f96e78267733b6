/**
 * Redaction of injected secrets echoed by an upstream. The vault lists the carriers of a secret
 * (the secret, its base64 forms: lib/vault/secret-forms.ts); an upstream may also wrap any of
 * them in a text escaping: a JSON string (`\"`, `\\`, `\/`, `\u00XX` in either hex case),
 * percent-encoding (either hex case, any subset of characters escaped, once or twice), form
 * encoding (`+` for a space) or HTML entities. Rather than listing every combination, each character of a carrier
 * is matched in any of its escaped spellings, so an encoder that escapes some characters and not
 * others is caught too.
 *
 * The pattern is a concatenation of alternations without quantifiers, and the alternatives for one
 * character differ within their first three characters, so matching stays linear in the response.
 * Matches are replaced by asterisks of the same byte length, so Content-Length stays true.
 * Letters and digits are never escaped, so each carrier's longest run of them appears verbatim
 * in every spelling: a response without any such anchor is passed on without running the regex.
 */
export interface SecretPattern {
  readonly regex: RegExp;
  /**
   * The longest spelling any carrier can take, in bytes, a carrier that may be wrapped counted
   * with a line break between every two of its characters: the most a stream ever holds back.
   */
  readonly maxLength: number;
  /** The longest spelling any carrier can take not counting its line breaks, in bytes. */
  readonly maxUnbroken: number;
  /** One verbatim substring per carrier (null: some carrier has none worth searching for). */
  readonly anchors: readonly string[] | null;
  /**
   * One substring per carrier that may be wrapped across lines, found verbatim in the data once
   * its line breaks are taken out, looked for only when the anchors are absent and the data holds
   * a line break between two characters a carrier can have: empty when no carrier can be wrapped,
   * null when some wrapped carrier has none worth searching for.
   */
  readonly wrappedAnchors: readonly string[] | null;
}

const MIN_ANCHOR = 3;

/**
 * Encoders wrap base64 and hexadecimal at a line width (MIME at 76 characters with CRLF, PEM and
 * `openssl base64` at 64, `base64` at 76, `xxd -p` at 60, with LF), and a JSON string carries such
 * a break as `\n` or `\r\n`: a carrier written only in those alphabets may have one between any
 * two of its characters. An optional alternative that no carrier character starts with (and
 * whose JSON spelling differs from `\/` and `\u` at its second character) keeps matching linear.
 */
const WRAPPABLE = /^[A-Za-z0-9+/=_-]+$/;
const LINE_BREAK = "(?:\r?\n|\\\\r\\\\n|\\\\n)?";
/** The longest line break LINE_BREAK matches (`\r\n` inside a JSON string), in bytes. */
const LINE_BREAK_LENGTH = 4;
/** Every line break LINE_BREAK matches, to take them out of the data before looking for a wrapped carrier's anchor. */
const LINE_BREAKS = /\r?\n|\\r\\n|\\n/g;

const hexClass = (digit: string) => (/[a-f]/i.test(digit) ? `[${digit.toLowerCase()}${digit.toUpperCase()}]` : digit);
const hexPattern = (value: number, width: number) => [...value.toString(16).padStart(width, "0")].map(hexClass).join("");
const escapeRegex = (text: string) => text.replace(/[\\^$.*+?()[\]{}|/-]/g, "\\$&");

/** Named and numeric HTML entities for the characters HTML escapes. */
const HTML: Record<string, string[]> = {
  '"': ["&quot;"],
  "&": ["&amp;"],
  "<": ["&lt;"],
  ">": ["&gt;"],
  "'": ["&apos;"],
};
const JSON_SHORT: Record<string, string> = { '"': '\\"', "\\": "\\\\", "/": "\\/" };

/** Every spelling of one character (a code point), as [regex source, longest length in bytes]. */
function characterPattern(char: string): [string, number] {
  const bytes = Buffer.from(char, "utf8");
  const raw = escapeRegex(bytes.toString("latin1"));
  // Letters and digits are never escaped by the encoders above.
  if (/^[A-Za-z0-9]$/.test(char)) return [raw, 1];
  const code = char.codePointAt(0) as number;
  // Percent-encoded once, or twice (a URL carried in another URL's query: `%252F`).
  const alternatives = [raw, [...bytes].map((b) => `%${hexPattern(b, 2)}`).join(""), [...bytes].map((b) => `%25${hexPattern(b, 2)}`).join("")];
  let longest = bytes.length * 5;
  if (code <= 0xffff) {
    alternatives.push(`\\\\u${hexPattern(code, 4)}`);
    longest = Math.max(longest, 6);
  } else {
    const high = 0xd800 + ((code - 0x10000) >> 10);
    const low = 0xdc00 + ((code - 0x10000) & 0x3ff);
    alternatives.push(`\\\\u${hexPattern(high, 4)}\\\\u${hexPattern(low, 4)}`);
    longest = Math.max(longest, 12);
  }
  const short = JSON_SHORT[char];
  if (short) alternatives.push(escapeRegex(short));
  if (char === " ") alternatives.push("\\+");
  // Named references for the characters HTML must escape; a numeric one for any character:
  // encoders write more than those five (Go's html/template `+` as `&#43;`, OWASP's `/` as
  // `&#x2F;`, some every character but letters and digits).
  for (const entity of HTML[char] ?? []) alternatives.push(escapeRegex(entity));
  alternatives.push(`&#0*${code};`, `&#[xX]0*${hexPattern(code, 1)};`);
  longest = Math.max(longest, 8);
  return [`(?:${alternatives.join("|")})`, longest];
}

/** A carrier's longest run of letters and digits: verbatim in every spelling of it. */
const longestRun = (form: string) => (form.match(/[A-Za-z0-9]+/g) ?? []).reduce((a, b) => (b.length > a.length ? b : a), "");

/** Compiles the carriers of one credential's secret; null when there is nothing to redact. */
export function compileSecretPattern(forms: readonly string[]): SecretPattern | null {
  const usable = [...new Set(forms.filter((f) => f.length >= 4))].sort((a, b) => b.length - a.length);
  if (usable.length === 0) return null;
  let maxLength = 0;
  let maxUnbroken = 0;
  const anchors = usable.map(longestRun);
  const wrappedAnchors: string[] = [];
  let everyWrappedHasAnchor = true;
  const sources = usable.map((form) => {
    const wrappable = WRAPPABLE.test(form);
    let length = 0;
    const source = [...form]
      .map((char) => {
        const [pattern, longest] = characterPattern(char);
        length += longest;
        return pattern;
      })
      .join(wrappable ? LINE_BREAK : "");
    maxUnbroken = Math.max(maxUnbroken, length);
    if (wrappable) {
      length += LINE_BREAK_LENGTH * (form.length - 1);
      // With the line breaks taken out, the run is whole again, but for one case: a run that
      // starts the carrier with `n` after a lone `\` in the data loses that `n` with the `\n`.
      const run = longestRun(form);
      const anchor = form.startsWith(run) && run.startsWith("n") ? run.slice(1) : run;
      if (anchor.length < MIN_ANCHOR) everyWrappedHasAnchor = false;
      wrappedAnchors.push(anchor);
    }
    maxLength = Math.max(maxLength, length);
    return source;
  });
  return {
    regex: new RegExp(sources.join("|"), "g"),
    maxLength,
    maxUnbroken,
    anchors: anchors.every((a) => a.length >= MIN_ANCHOR) ? anchors : null,
    wrappedAnchors: everyWrappedHasAnchor ? [...new Set(wrappedAnchors)] : null,
  };
}

/**
 * Whether `data` may hold a carrier: one's anchor is in it, or it holds a line break between two
 * characters a carrier can have and, once every line break is taken out, the anchor of a carrier
 * that may be wrapped across lines (at any width, down to a break between every two characters).
 * Letters and digits are the same in a string as in its latin1 bytes, so this answers for either.
 */
function mayHold(data: Buffer | string, pattern: SecretPattern): boolean {
  if (!pattern.anchors || pattern.anchors.some((anchor) => data.includes(anchor))) return true;
  if (pattern.wrappedAnchors !== null && pattern.wrappedAnchors.length === 0) return false;
  if (!wrapsBetweenCarrierCharacters(data)) return false;
  if (pattern.wrappedAnchors === null) return true;
  const unbroken = (typeof data === "string" ? data : data.toString("latin1")).replace(LINE_BREAKS, "");
  return pattern.wrappedAnchors.some((anchor) => unbroken.includes(anchor));
}

/**
 * A carrier's character (or the start or end of its escaped spelling: `\`, `%`, `&`, `;`) on
 * each side of some line break. Cheaper than looking for every piece: an indented document
 * (pretty-printed JSON, HTML) breaks its lines between punctuation and indentation.
 */
const WRAPPED_SIDE = new Uint8Array(256);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-\\%&;") WRAPPED_SIDE[c.charCodeAt(0)] = 1;

const JSON_LINE_BREAK = "\\n";

function wrapsBetweenCarrierCharacters(data: Buffer | string): boolean {
  if (typeof data !== "string") return wrapsIn(data);
  // A header value (a string) almost never holds a line break: told without copying it.
  if (!data.includes("\n") && !data.includes(JSON_LINE_BREAK)) return false;
  return wrapsIn(Buffer.from(data, "latin1"));
}

/** One pass over the bytes (a native search per line break costs more on short lines). */
function wrapsIn(bytes: Buffer): boolean {
  // Most answers without a line break (compact JSON) are told by two native searches.
  if (bytes.indexOf(0x0a) < 0 && bytes.indexOf(JSON_LINE_BREAK) < 0) return false;
  const n = bytes.length;
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    let before = -1;
    let after = n;
    if (b === 0x0a) {
      before = i >= 1 && bytes[i - 1] === 0x0d ? i - 2 : i - 1;
      after = i + 1;
    } else if (b === 0x5c && bytes[i + 1] === 0x6e) {
      // `\n`, or the `\n` of `\r\n`, inside a JSON string.
      before = i >= 2 && bytes[i - 2] === 0x5c && bytes[i - 1] === 0x72 ? i - 3 : i - 1;
      after = i + 2;
    } else continue;
    if (before >= 0 && after < n && WRAPPED_SIDE[bytes[before]!] === 1 && WRAPPED_SIDE[bytes[after]!] === 1) return true;
  }
  return false;
}

const compiled = new WeakMap<readonly string[], SecretPattern | null>();

/** The compiled pattern for a credential's `secretForms` (compiled once per loaded credential). */
export function patternFor(forms: readonly string[]): SecretPattern | null {
  if (!compiled.has(forms)) compiled.set(forms, compileSecretPattern(forms));
  return compiled.get(forms) ?? null;
}

const compiledNames = new WeakMap<readonly string[], SecretPattern | null>();

/**
 * The pattern for header names: a name arrives lower-cased (Node lower-cases every header name,
 * and names are case-insensitive anyway), so a carrier whose letters have case (base64, base64url,
 * the secret itself) is matched in its lower-cased spelling. Names are lower-cased before matching.
 */
export function namePatternFor(forms: readonly string[]): SecretPattern | null {
  if (!compiledNames.has(forms)) compiledNames.set(forms, compileSecretPattern(forms.map((form) => form.toLowerCase())));
  return compiledNames.get(forms) ?? null;
}

/** Redacts secrets in a header name: `name` lower-cased, matched against `pattern` from namePatternFor. */
export function redactHeaderName(name: string, pattern: SecretPattern): string {
  return redactHeaderValue(name.toLowerCase(), pattern);
}

/** Names found to hold no secret, per compiled pattern: the same few names come with every answer. */
const cleanNames = new WeakMap<SecretPattern, { names: SecretPattern | null; clean: Set<string> }>();
const MAX_CLEAN_NAMES = 1024;

/**
 * A response header's name redacted as a value (against `values`, from patternFor) and, when
 * given, lower-cased against `names` (from namePatternFor). A name that held nothing is
 * remembered for the pair and passed on at once next time; one that held something (rare) is
 * redacted every time, so no name carrying a secret is kept.
 */
export function redactResponseHeaderName(name: string, values: SecretPattern, names: SecretPattern | null): string {
  let known = cleanNames.get(values);
  if (known === undefined || known.names !== names) cleanNames.set(values, (known = { names, clean: new Set() }));
  if (known.clean.has(name)) return name;
  const redacted = names ? redactHeaderName(redactHeaderValue(name, values), names) : redactHeaderValue(name, values);
  if (redacted === name) {
    if (known.clean.size >= MAX_CLEAN_NAMES) known.clean.clear();
    known.clean.add(name);
  }
  return redacted;
}

/** Replaces every match in `data` with asterisks; returns `data` itself when nothing matched. */
function redactBytes(data: Buffer, pattern: SecretPattern): Buffer {
  if (!mayHold(data, pattern)) return data;
  const text = data.toString("latin1");
  const regex = new RegExp(pattern.regex.source, "g");
  let out: Buffer | null = null;
  for (let m = regex.exec(text); m !== null; m = regex.exec(text)) {
    out ??= Buffer.from(data);
    out.fill(0x2a, m.index, m.index + m[0].length);
  }
  return out ?? data;
}

const EMPTY = Buffer.alloc(0);

/**
 * Whether byte `i` of `data` belongs to a line break LINE_BREAK matches (CRLF, LF, or `\n` or
 * `\r\n` inside a JSON string). Errs towards yes (a `\n` after an escaped backslash is counted),
 * which only holds back more.
 */
function inLineBreak(data: Buffer, i: number): boolean {
  switch (data[i]) {
    case 0x0a:
      return true;
    case 0x0d:
      return data[i + 1] === 0x0a;
    case 0x5c: // `\`
      return data[i + 1] === 0x6e || (data[i + 1] === 0x72 && data[i + 2] === 0x5c && data[i + 3] === 0x6e);
    case 0x6e: // `n`
      return data[i - 1] === 0x5c;
    case 0x72: // `r`
      return data[i - 1] === 0x5c && data[i + 1] === 0x5c && data[i + 2] === 0x6e;
    default:
      return false;
  }
}

/**
 * Redacts a byte stream chunk by chunk, including occurrences split across chunks: what may be
 * the start of an occurrence is held back until more data or the end arrives. That is the last
 * (longest spelling without line breaks - 1) bytes, plus every line break among them and the
 * bytes a line break cut at the end may have begun, so a carrier wrapped at any width, even
 * with a break between every two characters, is held whole; never more than (longest spelling
 * with a break between every two characters - 1) bytes. A chunk whose tail holds no line break
 * holds back the same as without wrapping. A plain object the relay feeds (relay.ts), not a
 * Transform stream: a stream per response, with its two internal states and the extra hop of
 * `pipe`, cost more than the matching itself.
 */
export class StreamRedaction {
  /** The bytes other than line breaks held back. */
  private readonly keep: number;
  /** The most bytes held back, line breaks included. */
  private readonly most: number;
  private tail: Buffer = EMPTY;

  constructor(private readonly pattern: SecretPattern) {
    const wraps = pattern.maxLength > pattern.maxUnbroken;
    // A line break cut at the end (`\r`, `\`, `\r\`) is counted as text: room for its first bytes.
    this.keep = Math.max(0, pattern.maxUnbroken - 1 + (wraps ? LINE_BREAK_LENGTH - 1 : 0));
    this.most = Math.max(this.keep, pattern.maxLength - 1);
  }

  /**
   * Where the held-back tail of `data` starts: after `held` below, or after the last blank line
   * in it. No spelling of a carrier holds two line breaks with nothing between them (a carrier's
   * characters are never line breaks, and at most one break separates two of them), so no
   * occurrence spans a blank line (`\n\n`, `\n\r\n`, `\r\r`) and what precedes one is final. An
   * event stream's events end with one: each is passed on whole as it comes instead of waiting
   * in the tail for the next (a stream of heartbeats every 15 s delivered each 15 s late).
   */
  private cut(data: Buffer): number {
    const at = this.held(data);
    if (at >= data.length) return at;
    const tail = data.subarray(at);
    const blank = Math.max(after(tail, "\n\n"), after(tail, "\n\r\n"), after(tail, "\r\r"));
    return blank > 0 ? at + blank : at;
  }

  private held(data: Buffer): number {
    const n = data.length;
    const plain = n - this.keep;
    if (plain <= 0) return 0;
    // Most tails hold no line break (or it is not a carrier that may be wrapped): two native searches.
    if (this.most === this.keep || (data.indexOf(0x0a, plain) < 0 && data.indexOf("\\n", plain - 1) < 0)) return plain;
    const floor = Math.max(0, n - this.most);
    let at = n;
    for (let text = 0; at > floor && text < this.keep; ) if (!inLineBreak(data, --at)) text++;
    // The line breaks just before: the start of an occurrence may be counted among them.
    while (at > floor && inLineBreak(data, at - 1)) at--;
    return at;
  }

  /** The next chunk in; what can be passed on now (possibly empty). */
  push(chunk: Buffer): Buffer {
    const data = redactBytes(this.tail.length ? Buffer.concat([this.tail, chunk]) : chunk, this.pattern);
    const cut = this.cut(data);
    // A copy: the tail outlives the chunk it came from.
    this.tail = Buffer.from(data.subarray(cut));
    return cut > 0 ? data.subarray(0, cut) : EMPTY;
  }

  /** The stream is over: what was held back, redacted. */
  end(): Buffer {
    const rest = this.tail.length ? redactBytes(this.tail, this.pattern) : EMPTY;
    this.tail = EMPTY;
    return rest;
  }
}

/** Just after the last `text` in `data`, or -1. */
function after(data: Buffer, text: string): number {
  const i = data.lastIndexOf(text);
  return i < 0 ? -1 : i + text.length;
}

/** Redacts secrets in a header value the same way (an upstream may echo them in headers too). */
export function redactHeaderValue(value: string, pattern: SecretPattern): string {
  if (!mayHold(value, pattern)) return value;
  const bytes = Buffer.from(value, "latin1");
  const out = redactBytes(bytes, pattern);
  return out === bytes ? value : out.toString("latin1");
}
