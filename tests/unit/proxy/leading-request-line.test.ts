import { describe, expect, it } from "vitest";
import { leadingRequestLine } from "@/proxy-worker/proxy/body";

const line = (text: string) => leadingRequestLine(Buffer.from(text, "latin1"));

describe("leadingRequestLine: a body that a server reading no body would run as a request", () => {
  it("finds a request line at the start, in the spellings lenient servers accept", () => {
    expect(line("DELETE /volumes/vol_1 HTTP/1.1\r\nHost: api\r\n\r\n")).toBe("DELETE /volumes/vol_1 HTTP/1.1");
    expect(line("DELETE /volumes/vol_1 HTTP/1.1\r\nX: ")).toBe("DELETE /volumes/vol_1 HTTP/1.1");
    expect(line("\r\n\r\n\t delete\t/x\thttp/1.0\n")).toBe("delete\t/x\thttp/1.0");
    expect(line("\u0000\u000b  POST  http://api.test/x  HTTP/1.1")).toBe("POST  http://api.test/x  HTTP/1.1");
    expect(line("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")).toBe("PRI * HTTP/2.0");
    expect(line("M-SEARCH * HTTP/1.1\r\n")).toBe("M-SEARCH * HTTP/1.1");
    expect(line("GET / HTTP/")).toBe("GET / HTTP/");
    // Any token is a method to a server that hands unknown ones to its application.
    expect(line("SELECT 1 HTTP/1.1")).toBe("SELECT 1 HTTP/1.1");
  });

  it("leaves every ordinary body alone, request lines inside it included", () => {
    for (const body of [
      '{"query":"mutation { volumeDelete(id: \\"v\\") }"}',
      "DELETE FROM users WHERE id = 1",
      "a=1&b=DELETE /x HTTP/1.1",
      "note: DELETE /items/1 HTTP/1.1",
      '["DELETE /items/1 HTTP/1.1"]',
      "GET /x\r\nHTTP/1.1",
      "GET /x HTTP",
      "GET /x HTTP1.1",
      "GET  HTTP/1.1",
      "GET",
      "",
      "   \r\n",
      "--boundary\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nGET / HTTP/1.1\r\n--boundary--",
    ]) {
      expect(line(body), JSON.stringify(body)).toBeNull();
    }
  });

  it("stays linear on hostile bodies (long runs of blanks, of token bytes, of target bytes)", () => {
    const started = process.hrtime.bigint();
    expect(leadingRequestLine(Buffer.alloc(8 << 20, 0x20))).toBeNull();
    expect(leadingRequestLine(Buffer.alloc(8 << 20, 0x41))).toBeNull();
    expect(leadingRequestLine(Buffer.concat([Buffer.from("GET "), Buffer.alloc(8 << 20, 0x2f)]))).toBe(`GET ${"/".repeat(196)}`);
    expect(leadingRequestLine(Buffer.concat([Buffer.from("GET "), Buffer.alloc(8000, 0x2f), Buffer.from(" HTTP/1.1")]))).toBe(`GET ${"/".repeat(196)}`);
    expect(leadingRequestLine(Buffer.concat([Buffer.from("x "), Buffer.alloc(8 << 20, 0x20)]))).toBeNull();
    expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(2000);
  });

  it("a request line longer than the scan (8 KiB) is one: Node takes a 16 KiB head, and the rest of the line is its query string", () => {
    const long = (n: number, tail: string) => line(`DELETE /volumes/vol_prod?p=${"A".repeat(n)}${tail}`);
    expect(long(8200, " HTTP/1.1\r\nX: ")).toMatch(/^DELETE \/volumes\/vol_prod\?p=A+$/);
    expect(long(9000, " HTTP/1.1\r\n\r\n")).not.toBeNull();
    expect(long(20_000, "")).not.toBeNull();
    expect(line(`GET /x ${" ".repeat(9000)}HTTP/1.1`)).not.toBeNull();
  });

  it("a body that ends inside a request line, which the next request's head would complete, is one", () => {
    expect(line("DELETE /volumes/vol_prod?x=")).toBe("DELETE /volumes/vol_prod?x=");
    expect(line("DELETE /volumes/vol_prod ")).toBe("DELETE /volumes/vol_prod ");
    expect(line("\r\nPOST http://api.test/volumes/v/restore")).toBe("POST http://api.test/volumes/v/restore");
    expect(line("OPTIONS *")).toBe("OPTIONS *");
    expect(line("M-SEARCH /x")).toBe("M-SEARCH /x");
  });

  it("one-line text bodies are not (the control)", () => {
    for (const body of ["Fix the build", "Update /etc/hosts", "DELETE FROM users", "SELECT 1", "DELETE", "GET ", "a b", "ok /x", "DELETE x", "DELETE *x", "NOTE mailto:x"]) {
      expect(line(body), JSON.stringify(body)).toBeNull();
    }
  });
});
