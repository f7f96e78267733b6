/**
 * What a captured connection speaks, from its first bytes: a TLS ClientHello (and its SNI), an
 * HTTP/1 request line, or something else (raw TCP). Pure; linear in the bytes seen: a `Sniffer`
 * keeps its place between chunks, so a connection fed a byte at a time costs no more than one
 * fed everything at once (each byte is looked at once, and copied at most twice).
 */
export type Sniffed =
  | { kind: "tls"; serverName: string | null }
  | { kind: "http" }
  | { kind: "raw" }
  /** Not enough bytes yet to tell. */
  | { kind: "more" };

/** Enough for any real ClientHello (post-quantum key shares make them a few KB). */
export const SNIFF_LIMIT = 16 * 1024;

const METHOD = /^[A-Z]{3,10} /;
const MORE: Sniffed = { kind: "more" };
const RAW: Sniffed = { kind: "raw" };

/** One-shot: what `data` (the first bytes of a connection) speaks. */
export function sniff(data: Buffer): Sniffed {
  return new Sniffer().push(data);
}

/**
 * Sniffs a connection chunk by chunk. Only the first SNIFF_LIMIT bytes are looked at; a ClientHello
 * must be whole, in complete handshake records, within them. Once decided, the answer stays.
 */
export class Sniffer {
  private seen = 0;
  private result: Sniffed = MORE;
  /** Told by the first byte: a TLS record (0x16), or something to read a request line from. */
  private mode: "unknown" | "head" | "tls" = "unknown";
  /** Not TLS: the first bytes, up to the 12 a method token and its space can take. */
  private head = Buffer.alloc(0);
  /** TLS: the record header being read (5 bytes), and the body of the record being read. */
  private readonly recordHeader = Buffer.alloc(5);
  private recordHeaderHave = 0;
  private recordBody: Buffer[] = [];
  private recordLeft = 0;
  /** TLS: the handshake bytes of the complete records so far. */
  private readonly handshake: Buffer[] = [];
  private handshakeHave = 0;
  private need = -1;

  push(chunk: Buffer): Sniffed {
    if (this.result.kind !== "more") return this.result;
    const piece = chunk.subarray(0, Math.max(0, SNIFF_LIMIT - this.seen));
    this.seen += piece.length;
    if (piece.length === 0) return this.result;
    if (this.mode === "unknown") this.mode = piece[0] === 0x16 ? "tls" : "head";
    this.result = this.mode === "tls" ? this.pushTls(piece) : this.pushHead(piece);
    if (this.result.kind === "more" && this.seen >= SNIFF_LIMIT) this.result = RAW;
    return this.result;
  }

  private pushHead(piece: Buffer): Sniffed {
    this.head = Buffer.concat([this.head, piece.subarray(0, 12 - this.head.length)]);
    const head = this.head.toString("latin1");
    if (METHOD.test(head)) return { kind: "http" };
    // A method token still arriving ("GE"), or a lone upper-case start: wait for more.
    if (/^[A-Z]{1,10}$/.test(head) && this.head.length < 11) return MORE;
    return RAW;
  }

  /** Reassembles the handshake bytes from consecutive handshake records (a ClientHello may be split). */
  private pushTls(piece: Buffer): Sniffed {
    let p = 0;
    while (p < piece.length) {
      if (this.recordHeaderHave < 5) {
        const n = Math.min(5 - this.recordHeaderHave, piece.length - p);
        piece.copy(this.recordHeader, this.recordHeaderHave, p, p + n);
        this.recordHeaderHave += n;
        p += n;
        if (this.recordHeaderHave < 5) break;
        if (this.recordHeader[0] !== 0x16 || this.recordHeader[1] !== 0x03) return RAW;
        this.recordLeft = this.recordHeader.readUInt16BE(3);
        this.recordBody = [];
      }
      const n = Math.min(this.recordLeft, piece.length - p);
      if (n > 0) this.recordBody.push(piece.subarray(p, p + n));
      this.recordLeft -= n;
      p += n;
      if (this.recordLeft > 0) break;
      // A complete record: its body joins the handshake bytes.
      this.recordHeaderHave = 0;
      for (const body of this.recordBody) {
        this.handshake.push(body);
        this.handshakeHave += body.length;
      }
      this.recordBody = [];
      if (this.need < 0 && this.handshakeHave >= 4) {
        const start = this.handshakeBytes(4);
        if (start[0] !== 0x01) return RAW;
        this.need = 4 + start.readUIntBE(1, 3);
      }
      if (this.need >= 0 && this.handshakeHave >= this.need) {
        const hs = Buffer.concat(this.handshake, this.handshakeHave);
        return { kind: "tls", serverName: serverNameOf(hs.subarray(4, this.need)) };
      }
    }
    return MORE;
  }

  /** The first `n` handshake bytes (n small: read once, for the handshake's header). */
  private handshakeBytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    let at = 0;
    for (const piece of this.handshake) {
      if (at >= n) break;
      at += piece.copy(out, at, 0, Math.min(piece.length, n - at));
    }
    return out;
  }
}

function serverNameOf(hello: Buffer): string | null {
  let p = 2 + 32; // version, random
  if (p >= hello.length) return null;
  p += 1 + (hello[p] ?? 0); // session id
  if (p + 2 > hello.length) return null;
  p += 2 + hello.readUInt16BE(p); // cipher suites
  if (p >= hello.length) return null;
  p += 1 + (hello[p] ?? 0); // compression methods
  if (p + 2 > hello.length) return null;
  const end = Math.min(hello.length, p + 2 + hello.readUInt16BE(p));
  p += 2;
  while (p + 4 <= end) {
    const type = hello.readUInt16BE(p);
    const len = hello.readUInt16BE(p + 2);
    const ext = hello.subarray(p + 4, Math.min(end, p + 4 + len));
    p += 4 + len;
    if (type !== 0 || ext.length < 5) continue;
    // server_name_list: length(2), then entries of type(1) length(2) name.
    let q = 2;
    while (q + 3 <= ext.length) {
      const nameType = ext[q];
      const nameLen = ext.readUInt16BE(q + 1);
      const name = ext.subarray(q + 3, q + 3 + nameLen);
      q += 3 + nameLen;
      if (nameType === 0 && name.length === nameLen) return name.toString("latin1").toLowerCase().replace(/\.$/, "");
    }
  }
  return null;
}
