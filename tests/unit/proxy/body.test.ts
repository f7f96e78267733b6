import http from "node:http";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readBody } from "@/proxy-worker/proxy/body";

/** What readBody made of each request, answered as JSON. */
let server: http.Server;
let port: number;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const send = (status: number, answer: object) => {
      res.statusCode = status;
      res.end(JSON.stringify(answer));
    };
    readBody(req, 64, 2000).then(
      (body) => send(200, { body: body === null ? null : body.toString("latin1") }),
      (error: Error) => send(413, { error: error.message }),
    );
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  port = (server.address() as net.AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

/** Sends raw bytes on one connection and returns everything the server wrote back. */
function raw(bytes: string, expectResponses = 1): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(bytes));
    let out = "";
    socket.on("data", (d) => {
      out += d.toString("latin1");
      if ((out.match(/HTTP\/1\.1 /g) ?? []).length >= expectResponses && /\}$/.test(out)) socket.end();
    });
    socket.on("end", () => resolve(out));
    socket.on("error", reject);
    setTimeout(() => {
      socket.destroy();
      resolve(out);
    }, 3000);
  });
}

const bodies = (out: string) => [...out.matchAll(/\r\n\r\n(\{[^}]*\})/g)].map((m) => JSON.parse(m[1]!) as { body?: string | null; error?: string });

describe("reading the request body", () => {
  it("a request without Content-Length or Transfer-Encoding has no body", async () => {
    expect(bodies(await raw("GET /x HTTP/1.1\r\nHost: a\r\n\r\n"))).toEqual([{ body: null }]);
    expect(bodies(await raw("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"))).toEqual([{ body: null }]);
  });

  it("bytes after a bodiless request are the next request, never its body", async () => {
    const out = await raw("GET /a HTTP/1.1\r\nHost: a\r\n\r\nPOST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", 2);
    expect(bodies(out)).toEqual([{ body: null }, { body: "hello" }]);
  });

  it("reads a body a GET declares (a mutation hidden in a GET must still be classified)", async () => {
    expect(bodies(await raw("GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"))).toEqual([{ body: "abc" }]);
  });

  it("reads a chunked body", async () => {
    expect(bodies(await raw("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"))).toEqual([{ body: "abcde" }]);
  });

  it("refuses a body over the limit, declared or streamed", async () => {
    expect(bodies(await raw(`POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 65\r\n\r\n${"x".repeat(65)}`))[0]!.error).toMatch(/exceeds the 64-byte limit/);
    expect(bodies(await raw(`POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n${"x".repeat(65)}\r\n0\r\n\r\n`))[0]!.error).toMatch(/exceeds the 64-byte limit/);
  });
});
