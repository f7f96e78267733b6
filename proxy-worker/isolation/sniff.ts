/**
 * What a captured connection speaks, from its first bytes: a TLS ClientHello (and its SNI), an
 * HTTP/1 request line, or something else (raw TCP). Pure; linear in the bytes seen.
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

export function sniff(data: Buffer): Sniffed {
  if (data.length === 0) return { kind: "more" };
  if (data[0] === 0x16) return sniffTls(data);
  const head = data.subarray(0, 12).toString("latin1");
  if (METHOD.test(head)) return { kind: "http" };
  // A method token still arriving ("GE"), or a lone upper-case start: wait for more.
  if (/^[A-Z]{1,10}$/.test(head) && data.length < 11) return { kind: "more" };
  return { kind: "raw" };
}

/** Parses the ClientHello across TLS records (it may be split); the SNI host_name, lower-cased. */
function sniffTls(data: Buffer): Sniffed {
  // Reassemble the handshake bytes from consecutive handshake records.
  const chunks: Buffer[] = [];
  let offset = 0;
  let have = 0;
  let need = -1;
  while (offset + 5 <= data.length) {
    if (data[offset] !== 0x16 || data[offset + 1] !== 0x03) return { kind: "raw" };
    const len = data.readUInt16BE(offset + 3);
    if (offset + 5 + len > data.length) break;
    chunks.push(data.subarray(offset + 5, offset + 5 + len));
    have += len;
    offset += 5 + len;
    const hs = Buffer.concat(chunks);
    if (need < 0 && hs.length >= 4) {
      if (hs[0] !== 0x01) return { kind: "raw" };
      need = 4 + hs.readUIntBE(1, 3);
    }
    if (need >= 0 && have >= need) return { kind: "tls", serverName: serverNameOf(hs.subarray(4, need)) };
  }
  return data.length >= SNIFF_LIMIT ? { kind: "raw" } : { kind: "more" };
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
