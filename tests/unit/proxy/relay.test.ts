import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { connect, type AddressInfo } from "node:net";
import { PassThrough, Readable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { patternFor, StreamRedaction } from "@/proxy-worker/proxy/redact";
import { Cancellation, relay } from "@/proxy-worker/proxy/relay";

// A real HTTP server whose handler relays a body the test controls, and a real client reading it.
let server: Server | null = null;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = null;
});

async function serve(handler: (res: ServerResponse) => void): Promise<number> {
  server = createServer((_req: IncomingMessage, res: ServerResponse) => handler(res));
  server.keepAliveTimeout = 1;
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

function get(port: number): Promise<{ res: IncomingMessage; body: Promise<{ data: Buffer; complete: boolean }> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port, path: "/", agent: false }, (res) => {
      const chunks: Buffer[] = [];
      const body = new Promise<{ data: Buffer; complete: boolean }>((done) => {
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => done({ data: Buffer.concat(chunks), complete: res.complete }));
        res.on("error", () => done({ data: Buffer.concat(chunks), complete: false }));
        res.on("aborted", () => done({ data: Buffer.concat(chunks), complete: false }));
      });
      resolve({ res, body });
    });
    req.on("error", reject);
    req.end();
  });
}

const RELAY_SECRET = "sk_live_relay_secret_1234567890";
// Every behaviour holds the same whether the body is piped as it is or fed through a redaction.
const MODES: [string, () => StreamRedaction | null][] = [
  ["piped", () => null],
  ["redacted", () => new StreamRedaction(patternFor([RELAY_SECRET])!)],
];

describe.each(MODES)("relay (%s): streaming an upstream body to the client", (_name, mode) => {
    it("delivers every byte of a large body with back-pressure and resolves once it is written", async () => {
      const payload = Buffer.alloc(8 * 1024 * 1024, "x");
      let relayed: Promise<void> | null = null;
      const port = await serve((res) => {
        res.writeHead(200, { "content-length": String(payload.length) });
        relayed = relay(Readable.from([payload.subarray(0, 1 << 20), payload.subarray(1 << 20)]), res, mode(), new Cancellation());
      });
      const { body } = await get(port);
      const got = await body;
      await relayed;
      expect(got.complete).toBe(true);
      expect(got.data.equals(payload)).toBe(true);
    });

    it("cuts the client's connection when the upstream body fails midway, instead of passing a short body off as whole", async () => {
      const source = new PassThrough();
      let relayed: Promise<void> | null = null;
      const port = await serve((res) => {
        res.writeHead(200, { "content-length": "1000" }); res.flushHeaders();
        relayed = relay(source, res, mode(), new Cancellation());
      });
      const { body } = await get(port);
      source.write(Buffer.alloc(100, "a"));
      setTimeout(() => source.destroy(new Error("upstream reset")), 20);
      const got = await body;
      await relayed;
      expect(got.complete).toBe(false);
      expect(got.data.length).toBeLessThan(1000);
    });

    it("treats a body that closes before its end as cut short", async () => {
      const source = new PassThrough();
      let relayed: Promise<void> | null = null;
      const port = await serve((res) => {
        res.writeHead(200); res.flushHeaders();
        relayed = relay(source, res, mode(), new Cancellation());
      });
      const { body } = await get(port);
      source.write("partial");
      setTimeout(() => source.destroy(), 20);
      const got = await body;
      await relayed;
      expect(got.complete).toBe(false);
    });

    it("stops reading the upstream when the client goes away", async () => {
      const source = new PassThrough();
      let relayed: Promise<void> | null = null;
      let sinkRes: ServerResponse | null = null;
      const port = await serve((res) => {
        sinkRes = res;
        res.writeHead(200); res.flushHeaders();
        relayed = relay(source, res, mode(), new Cancellation());
      });
      const { res } = await get(port);
      source.write("first chunk");
      await new Promise((r) => setTimeout(r, 20));
      res.destroy();
      await relayed;
      expect(source.destroyed).toBe(true);
      expect(sinkRes!.destroyed).toBe(true);
    });

    it("destroys both sides when aborted (a kill switch), and at once when already aborted", async () => {
      for (const early of [false, true]) {
        const source = new PassThrough();
        const abort = new Cancellation();
        if (early) abort.abort();
        let relayed: Promise<void> | null = null;
        const port = await serve((res) => {
          res.writeHead(200); res.flushHeaders();
          relayed = relay(source, res, mode(), abort);
        });
        const { body } = await get(port);
        if (!early) {
          source.write("some");
          setTimeout(() => abort.abort(), 20);
        }
        const got = await body;
        await relayed;
        expect(got.complete).toBe(false);
        expect(source.destroyed).toBe(true);
        await new Promise<void>((resolve) => server!.close(() => resolve()));
        server = null;
      }
    });

    it("stops reading the upstream while the client's side is full, and resumes when it drains", async () => {
      // Secrets (for the redacted mode) everywhere, some across chunk boundaries.
      const unit = Buffer.from(`<${RELAY_SECRET}>` + "y".repeat(990));
      const payload = Buffer.concat(Array.from({ length: 16 * 1024 }, () => unit)); // 16 MiB
      const chunks = Array.from({ length: 256 }, (_v, i) => payload.subarray(i * 65_536 + (i ? 7 : 0), (i + 1) * 65_536 + 7));
      let pauses = 0;
      let relayed: Promise<void> | null = null;
      const port = await serve((res) => {
        const source = Readable.from(chunks);
        const pause = source.pause.bind(source);
        source.pause = () => {
          pauses++;
          return pause();
        };
        res.writeHead(200, { "content-length": String(payload.length) });
        relayed = relay(source, res, mode(), new Cancellation());
      });
      const { res, body } = await get(port);
      // A client that stops reading for a while: the server's socket fills up.
      res.pause();
      await new Promise((r) => setTimeout(r, 100));
      res.resume();
      const got = await body;
      await relayed;
      expect(pauses).toBeGreaterThan(0);
      expect(got.complete).toBe(true);
      expect(got.data.length).toBe(payload.length);
      const expected = mode() ? Buffer.from(payload.toString("latin1").split(RELAY_SECRET).join("*".repeat(RELAY_SECRET.length)), "latin1") : payload;
      expect(got.data.equals(expected)).toBe(true);
    });
});

describe("relay: redaction and cancellation", () => {
  it("redacts through the given redaction, across chunk boundaries", async () => {
    const secret = "sk_live_relay_secret_1234567890";
    const pattern = patternFor([secret])!;
    const port = await serve((res) => {
      res.writeHead(200); res.flushHeaders();
      void relay(Readable.from([Buffer.from(`{"echo":"${secret.slice(0, 10)}`), Buffer.from(`${secret.slice(10)}"}`)]), res, new StreamRedaction(pattern), new Cancellation());
    });
    const { body } = await get(port);
    const got = await body;
    expect(got.complete).toBe(true);
    expect(got.data.toString()).not.toContain(secret.slice(0, 10) + secret.slice(10));
    expect(got.data.toString()).toBe(`{"echo":"${"*".repeat(secret.length)}"}`);
  });

  it("sends a small redacted body that arrives whole with its end in one write to the client's socket", async () => {
    const secret = "sk_live_relay_secret_1234567890";
    const text = `{"id":42,"echo":"${secret}","padding":"${"p".repeat(80)}"}`;
    let writes = -1;
    const port = await serve((res) => {
      const socket = res.socket as unknown as { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
      let count = 0;
      for (const name of ["_write", "_writev"] as const) {
        const original = socket[name].bind(socket);
        socket[name] = (...a: unknown[]) => {
          count++;
          original(...a);
        };
      }
      res.writeHead(200, { "content-length": String(text.length) });
      // The body's bytes and its end in one turn of the event loop, as an upstream read whole gives them.
      const source = new PassThrough();
      void relay(source, res, new StreamRedaction(patternFor([secret])!), new Cancellation()).then(() => (writes = count));
      source.end(text);
    });
    const { body } = await get(port);
    const got = await body;
    expect(got.data.toString()).toBe(text.replace(secret, "*".repeat(secret.length)));
    await new Promise((r) => setTimeout(r, 20));
    // Headers, the redacted part and the held-back tail: one write, not two.
    expect(writes).toBe(1);
  });

  it("sends a redacted stream that goes on as it comes, without waiting for its end", async () => {
    const secret = "sk_live_relay_secret_1234567890";
    const source = new PassThrough();
    const port = await serve((res) => {
      res.writeHead(200); res.flushHeaders();
      void relay(source, res, new StreamRedaction(patternFor([secret])!), new Cancellation());
    });
    const { res, body } = await get(port);
    const first = new Promise<string>((resolve) => res.once("data", (c: Buffer) => resolve(c.toString())));
    // An event of a server-sent stream; the stream stays open.
    source.write(`data: {"n":1,"key":"${secret}","note":"${"x".repeat(60)}"}\n\n`);
    const seen = await Promise.race([first, new Promise<string>((r) => setTimeout(() => r("(nothing within 2 s)"), 2000))]);
    expect(seen).toContain(`"n":1,"key":"${"*".repeat(secret.length)}"`);
    source.end();
    expect((await body).complete).toBe(true);
  });

  it("delivers pipelined redacted responses whole and in order, including those relayed before their turn on the connection", async () => {
    const secret = "sk_live_relay_secret_1234567890";
    const texts = [0, 1, 2].map((i) => `{"i":${i},"echo":"${secret}","pad":"${"p".repeat(100 + i * 50)}"}`);
    let n = 0;
    const port = await serve((res) => {
      const text = texts[n++]!;
      res.writeHead(200, { "content-length": String(text.length) });
      const source = new PassThrough();
      void relay(source, res, new StreamRedaction(patternFor([secret])!), new Cancellation());
      // The first answer is slow: the others are relayed while their responses wait for the connection.
      if (text === texts[0]) setTimeout(() => source.end(text), 50);
      else {
        source.write(text.slice(0, 60));
        setTimeout(() => source.end(text.slice(60)), 5);
      }
    });
    const socket = connect(port, "127.0.0.1");
    let got = "";
    socket.on("data", (d: Buffer) => (got += d.toString()));
    socket.write("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n");
    const deadline = Date.now() + 3000;
    while ((got.match(/HTTP\/1\.1 200/g) ?? []).length < 3 || !got.endsWith("}")) {
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    socket.destroy();
    const bodies = got.split(/\r\n\r\n/).filter((_part, i) => i > 0).map((part) => part.replace(/HTTP\/1\.1 200[^]*$/, ""));
    expect(bodies).toEqual(texts.map((t) => t.replace(secret, "*".repeat(secret.length))));
  });

  it("leaves no error unhandled when the upstream fails after the relay is over", async () => {
    const source = new PassThrough();
    const port = await serve((res) => {
      res.writeHead(200); res.flushHeaders();
      void relay(source, res, null, new Cancellation()).then(() => setImmediate(() => source.emit("error", new Error("late reset"))));
    });
    const { body } = await get(port);
    source.end("done");
    expect((await body).complete).toBe(true);
    await new Promise((r) => setTimeout(r, 20));
  });

  it("a Cancellation is a signal undici honours: the upstream request in flight ends when the client goes away", async () => {
    const { Pool } = await import("undici");
    let upstreamClosed!: () => void;
    const closed = new Promise<void>((r) => (upstreamClosed = r));
    // An upstream that never answers.
    server = createServer((req) => req.socket.once("close", () => upstreamClosed()));
    await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
    const pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    try {
      const cancel = new Cancellation();
      const pending = pool.request({ method: "GET", path: "/slow", signal: cancel });
      setTimeout(() => cancel.abort(), 30);
      await expect(pending).rejects.toMatchObject({ code: "UND_ERR_ABORTED" });
      await closed;
      expect(cancel.aborted).toBe(true);
      // Once only: a second abort emits nothing.
      let again = 0;
      cancel.on("abort", () => again++);
      cancel.abort();
      expect(again).toBe(0);
      // Already aborted before the request: undici refuses to start it.
      await expect(pool.request({ method: "GET", path: "/slow", signal: cancel })).rejects.toMatchObject({ code: "UND_ERR_ABORTED" });
    } finally {
      await pool.destroy();
    }
  });
});
