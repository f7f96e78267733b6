import { afterEach, describe, expect, it, vi } from "vitest";
import { sniff, Sniffer, SNIFF_LIMIT } from "@/proxy-worker/isolation/sniff";

/** A ClientHello handshake message naming `serverName`, padded (extension 21) to about `size` bytes. */
function helloHandshake(serverName: string, size: number): Buffer {
  const name = Buffer.from(serverName, "latin1");
  const sni = Buffer.alloc(9 + name.length);
  sni.writeUInt16BE(0, 0); // server_name
  sni.writeUInt16BE(5 + name.length, 2);
  sni.writeUInt16BE(3 + name.length, 4); // server_name_list
  sni[6] = 0; // host_name
  sni.writeUInt16BE(name.length, 7);
  name.copy(sni, 9);
  const fixed = 2 + 32 + 1 + 2 + 2 + 1 + 1 + 2; // version, random, no session id, one suite, one compression, extensions length
  const padLength = Math.max(0, size - 4 - fixed - sni.length - 4);
  const padding = Buffer.alloc(4 + padLength);
  padding.writeUInt16BE(21, 0);
  padding.writeUInt16BE(padLength, 2);
  const extensions = Buffer.concat([sni, padding]);
  const body = Buffer.concat([Buffer.from([3, 3]), Buffer.alloc(32, 7), Buffer.from([0, 0, 2, 0x13, 0x01, 1, 0]), Buffer.from([extensions.length >> 8, extensions.length & 0xff]), extensions]);
  const header = Buffer.from([1, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff]);
  return Buffer.concat([header, body]);
}

/** The handshake in TLS records of `perRecord` bytes each (1: a record per byte). */
function inRecords(handshake: Buffer, perRecord: number): Buffer {
  const records: Buffer[] = [];
  for (let i = 0; i < handshake.length; i += perRecord) {
    const part = handshake.subarray(i, i + perRecord);
    records.push(Buffer.from([0x16, 0x03, 0x01, part.length >> 8, part.length & 0xff]), part);
  }
  return Buffer.concat(records);
}

function feed(bytes: Buffer, piece: number): ReturnType<Sniffer["push"]> {
  const sniffer = new Sniffer();
  let result = sniffer.push(Buffer.alloc(0));
  for (let i = 0; i < bytes.length && result.kind === "more"; i += piece) result = sniffer.push(bytes.subarray(i, i + piece));
  return result;
}

describe("sniffing a ClientHello split into many records", () => {
  afterEach(() => vi.restoreAllMocks());

  // 2,700 handshake bytes in 1-byte records: 16,200 bytes on the wire, just under the limit.
  const hello = inRecords(helloHandshake("Split.Example.com.", 2_700), 1);

  it("finds the SNI of a ClientHello in 1-byte records, whole or fed in small pieces", () => {
    expect(hello.length).toBeLessThan(SNIFF_LIMIT);
    expect(sniff(hello)).toEqual({ kind: "tls", serverName: "split.example.com" });
    for (const piece of [1, 3, 64, 1000]) expect(feed(hello, piece)).toEqual({ kind: "tls", serverName: "split.example.com" });
    expect(feed(hello.subarray(0, hello.length - 1), 64)).toEqual({ kind: "more" });
  });

  it("keeps its refusals and its bound when fed in pieces", () => {
    // A record that is not a handshake, a handshake that is not a ClientHello, a version that is not TLS.
    expect(feed(Buffer.concat([hello.subarray(0, 600), Buffer.from([0x17, 0x03, 0x03, 0, 1, 0])]), 7)).toEqual({ kind: "raw" });
    expect(feed(inRecords(Buffer.from([2, 0, 0, 40, ...Buffer.alloc(40)]), 1), 2)).toEqual({ kind: "raw" });
    expect(feed(Buffer.from([0x16, 0x02, 0x01, 0, 1, 1]), 1)).toEqual({ kind: "raw" });
    // A ClientHello that is not whole within the first SNIFF_LIMIT bytes is raw TCP, as before.
    const tooLong = inRecords(helloHandshake("a.example.com", 2_800), 1);
    expect(tooLong.length).toBeGreaterThan(SNIFF_LIMIT);
    expect(feed(tooLong, 64)).toEqual({ kind: "raw" });
    expect(sniff(tooLong.subarray(0, SNIFF_LIMIT))).toEqual({ kind: "raw" });
    // HTTP and the rest, a byte at a time.
    expect(feed(Buffer.from("GET / HTTP/1.1\r\n"), 1)).toEqual({ kind: "http" });
    expect(feed(Buffer.from("GE"), 1)).toEqual({ kind: "more" });
    expect(feed(Buffer.from("SSH-2.0-OpenSSH_9.2\r\n"), 1)).toEqual({ kind: "raw" });
  });

  it("copies each byte a bounded number of times, however the records are split", () => {
    const concat = vi.spyOn(Buffer, "concat");
    const copied = () => concat.mock.calls.reduce((sum, [list]) => sum + list.reduce((n, b) => n + b.length, 0), 0);
    sniff(hello);
    // Joined once when the ClientHello is whole (it was once per record: ~3,600 times its size).
    expect(copied()).toBeLessThanOrEqual(hello.length);
    concat.mockClear();
    feed(hello, 64);
    expect(copied()).toBeLessThanOrEqual(hello.length);
  });
});
