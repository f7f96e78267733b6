import { Transform, type TransformCallback } from "node:stream";

/**
 * Replaces every occurrence of the given secrets in a byte stream with asterisks of the same
 * length (so Content-Length stays true), including occurrences split across chunks: the last
 * (longest secret - 1) bytes are held back until more data or the end arrives.
 */
export class SecretRedactor extends Transform {
  private readonly secrets: Buffer[];
  private readonly keep: number;
  private tail: Buffer = Buffer.alloc(0);
  redactions = 0;

  constructor(secrets: readonly string[]) {
    super();
    this.secrets = [...new Set(secrets.filter((s) => s.length >= 4))].map((s) => Buffer.from(s, "utf8")).sort((a, b) => b.length - a.length);
    this.keep = Math.max(0, ...this.secrets.map((s) => s.length - 1));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    const data = this.redact(this.tail.length ? Buffer.concat([this.tail, chunk]) : chunk);
    const cut = Math.max(0, data.length - this.keep);
    this.tail = Buffer.from(data.subarray(cut));
    if (cut > 0) this.push(data.subarray(0, cut));
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (this.tail.length) this.push(this.redact(this.tail));
    callback();
  }

  private redact(data: Buffer): Buffer {
    let out = data;
    for (const secret of this.secrets) {
      let at = out.indexOf(secret);
      if (at < 0) continue;
      if (out === data) out = Buffer.from(data);
      while (at >= 0) {
        out.fill(0x2a, at, at + secret.length);
        this.redactions++;
        at = out.indexOf(secret, at + secret.length);
      }
    }
    return out;
  }
}

/** Redacts secrets in header values the same way (an upstream may echo them in headers too). */
export function redactHeaderValue(value: string, secrets: readonly string[]): string {
  let out = value;
  for (const s of secrets) if (s.length >= 4 && out.includes(s)) out = out.split(s).join("*".repeat(s.length));
  return out;
}
