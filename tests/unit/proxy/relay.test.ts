import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from "node:http";
import { connect, createServer as createNetServer, type AddressInfo } from "node:net";
import { Pool, type Dispatcher } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { ProxyRefusal } from "@/proxy-worker/proxy/errors";
import { patternFor, StreamRedaction } from "@/proxy-worker/proxy/redact";
import { ResponseRelay, type RelayOutcome } from "@/proxy-worker/proxy/relay";

// Real parts: an upstream HTTP server the test controls, an undici pool to it, a "proxy" HTTP
// server whose handler relays each answer through a ResponseRelay, and a real client reading it.
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function listen(server: Server): Promise<number> {
  server.keepAliveTimeout = 1;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return (server.address() as AddressInfo).port;
}

const passHeaders = (_status: number, headers: IncomingHttpHeaders): OutgoingHttpHeaders => {
  const out: OutgoingHttpHeaders = {};
  for (const name of ["content-length", "content-type", "x-upstream"]) if (headers[name] !== undefined) out[name] = headers[name];
  return out;
};

interface Rig {
  port: number;
  outcomes: Promise<RelayOutcome>[];
  relays: ResponseRelay[];
  /** Requests the upstream received. */
  received: () => number;
}

/** The proxy side: each request to it is sent upstream through one pool and relayed back. */
async function rig(
  upstream: (req: IncomingMessage, res: ServerResponse) => void,
  o: { redaction?: () => StreamRedaction | null; head?: (status: number, headers: IncomingHttpHeaders) => OutgoingHttpHeaders; relay?: typeof ResponseRelay; before?: (req: IncomingMessage) => void; upstreamPort?: number } = {},
): Promise<Rig> {
  let received = 0;
  const upstreamPort =
    o.upstreamPort ??
    (await listen(
      createServer((req, res) => {
        received++;
        upstream(req, res);
      }),
    ));
  const pool = new Pool(`http://127.0.0.1:${upstreamPort}`, { connections: 4, pipelining: 1, keepAliveTimeout: 1_000 });
  closers.push(() => pool.destroy());
  const outcomes: Promise<RelayOutcome>[] = [];
  const relays: ResponseRelay[] = [];
  const Relay = o.relay ?? ResponseRelay;
  const port = await listen(
    createServer((req, res) => {
      o.before?.(req);
      const relay = new Relay(res, req.socket, o.head ?? passHeaders, o.redaction?.() ?? null);
      relays.push(relay);
      pool.dispatch({ method: "GET", path: req.url ?? "/", headers: {} }, relay);
      outcomes.push(
        relay.done.then((outcome) => {
          if (outcome.failure && !res.headersSent && !res.destroyed) {
            res.writeHead(outcome.failure.status, { "x-refusal": outcome.failure.code });
            res.end();
          }
          return outcome;
        }),
      );
    }),
  );
  return { port, outcomes, relays, received: () => received };
}

interface Got {
  res: IncomingMessage;
  body: Promise<{ data: Buffer; complete: boolean }>;
  /** What has arrived so far. */
  sofar: () => string;
}

function get(port: number, path = "/"): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port, path, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      const body = new Promise<{ data: Buffer; complete: boolean }>((done) => {
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => done({ data: Buffer.concat(chunks), complete: res.complete }));
        res.on("error", () => done({ data: Buffer.concat(chunks), complete: false }));
        res.on("aborted", () => done({ data: Buffer.concat(chunks), complete: false }));
      });
      resolve({ res, body, sofar: () => Buffer.concat(chunks).toString() });
    });
    req.on("error", reject);
    req.end();
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const RELAY_SECRET = "sk_live_relay_secret_1234567890";
const stars = "*".repeat(RELAY_SECRET.length);
// Every behaviour holds the same whether the body is passed on as it is or through a redaction.
const MODES: [string, () => StreamRedaction | null][] = [
  ["as it is", () => null],
  ["redacted", () => new StreamRedaction(patternFor([RELAY_SECRET])!)],
];

describe.each(MODES)("ResponseRelay (%s): an upstream answer to the client", (_name, redaction) => {
  it("delivers every byte of a large body and resolves with the upstream's status once it is written", async () => {
    const payload = Buffer.alloc(8 * 1024 * 1024, "x");
    const r = await rig((_req, res) => {
      res.writeHead(201, { "content-length": String(payload.length), "x-upstream": "yes" });
      res.write(payload.subarray(0, 1 << 20));
      setTimeout(() => res.end(payload.subarray(1 << 20)), 10);
    }, { redaction });
    const { res, body } = await get(r.port);
    const got = await body;
    expect(res.statusCode).toBe(201);
    expect(res.headers["x-upstream"]).toBe("yes");
    expect(got.complete).toBe(true);
    expect(got.data.equals(payload)).toBe(true);
    expect(await r.outcomes[0]).toEqual({ status: 201, failure: null, cut: null });
  });

  it("cuts the client's connection when the upstream fails midway, instead of passing a short body off as whole", async () => {
    const r = await rig((_req, res) => {
      res.writeHead(200, { "content-length": "1000" });
      res.write(Buffer.alloc(100, "a"));
      setTimeout(() => res.socket!.destroy(), 20);
    }, { redaction });
    const { body } = await get(r.port);
    const got = await body;
    expect(got.complete).toBe(false);
    expect(got.data.length).toBeLessThan(1000);
    // The answer had started: nothing to refuse, the cut connection says it, and so does the outcome.
    expect(await r.outcomes[0]).toEqual({ status: 200, failure: null, cut: "upstream_closed" });
  });

  it("treats a chunked body that closes before its end as cut short", async () => {
    const r = await rig((_req, res) => {
      res.writeHead(200);
      // Longer than what a redaction holds back, so that the answer has started.
      res.write(`partial ${"p".repeat(100)}`);
      setTimeout(() => res.socket!.destroy(), 20);
    }, { redaction });
    const { body } = await get(r.port);
    expect((await body).complete).toBe(false);
    expect(await r.outcomes[0]).toEqual({ status: 200, failure: null, cut: "upstream_closed" });
  });

  it("ends the upstream request when the client goes away mid-body", async () => {
    let upstreamClosed!: () => void;
    const closed = new Promise<void>((resolve) => (upstreamClosed = resolve));
    const r = await rig((_req, res) => {
      res.writeHead(200);
      res.write(`first chunk ${"f".repeat(100)}`);
      res.on("close", () => upstreamClosed());
    }, { redaction });
    const { res } = await get(r.port);
    await sleep(20);
    res.destroy();
    // The upstream's response closes: the proxy dropped that connection.
    await closed;
    expect(await r.outcomes[0]).toEqual({ status: 200, failure: null, cut: "client_gone" });
  });

  it("ends the upstream request when the client goes away before any answer, and records that it went away", async () => {
    let upstreamClosed!: () => void;
    const closed = new Promise<void>((resolve) => (upstreamClosed = resolve));
    // An upstream that never answers.
    const r = await rig((req) => req.socket.once("close", () => upstreamClosed()), { redaction });
    const client = connect(r.port, "127.0.0.1");
    client.write("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    while (r.received() === 0) await sleep(5);
    client.destroy();
    await closed;
    const outcome = await r.outcomes[0]!;
    expect(outcome.status).toBe(0);
    expect(outcome.failure?.code).toBe("client_gone");
  });

  it("never sends a request whose client is gone before it is dispatched", async () => {
    const r = await rig(
      (_req, res) => res.end("should not be asked"),
      {
        redaction,
        // The client's connection is closed by the time the relay is made (a kill switch, a reset).
        before: (req) => req.socket.destroy(),
      },
    );
    await get(r.port).catch(() => undefined);
    while (r.outcomes.length === 0) await sleep(5);
    const outcome = await r.outcomes[0]!;
    expect(outcome.failure?.code).toBe("client_gone");
    await sleep(50);
    expect(r.received()).toBe(0);
  });

  it("pauses the upstream while the client's side is full, and resumes when it drains", async () => {
    // Secrets (for the redacted mode) everywhere, some across chunk boundaries.
    const unit = Buffer.from(`<${RELAY_SECRET}>` + "y".repeat(990));
    const payload = Buffer.concat(Array.from({ length: 16 * 1024 }, () => unit)); // 16 MiB
    let pauses = 0;
    class CountingRelay extends ResponseRelay {
      override onRequestStart(controller: Dispatcher.DispatchController): void {
        const pause = controller.pause.bind(controller);
        controller.pause = () => {
          pauses++;
          pause();
        };
        super.onRequestStart(controller);
      }
    }
    const r = await rig((_req, res) => {
      res.writeHead(200, { "content-length": String(payload.length) });
      let at = 0;
      const more = () => {
        while (at < payload.length) {
          const chunk = payload.subarray(at, (at += 65_536 + 7));
          if (!res.write(chunk)) return void res.once("drain", more);
        }
        res.end();
      };
      more();
    }, { redaction, relay: CountingRelay });
    const { res, body } = await get(r.port);
    // A client that stops reading for a while: the proxy's socket to it fills up.
    res.pause();
    await sleep(100);
    res.resume();
    const got = await body;
    expect(pauses).toBeGreaterThan(0);
    expect(got.complete).toBe(true);
    expect(got.data.length).toBe(payload.length);
    const expected = redaction() ? Buffer.from(payload.toString("latin1").split(RELAY_SECRET).join(stars), "latin1") : payload;
    expect(got.data.equals(expected)).toBe(true);
    expect(await r.outcomes[0]).toEqual({ status: 200, failure: null, cut: null });
  });

  it("refuses an answer its head check refuses: nothing of it reaches the client and the upstream request ends", async () => {
    let upstreamClosed!: () => void;
    const closed = new Promise<void>((resolve) => (upstreamClosed = resolve));
    const r = await rig(
      (_req, res) => {
        res.writeHead(200, { "content-encoding": "gzip", "x-upstream": "secret-bearing" });
        res.write("compressed bytes");
        res.on("close", () => upstreamClosed());
      },
      {
        redaction,
        head: (_status, headers) => {
          if (headers["content-encoding"] === "gzip") throw new ProxyRefusal("bad_gateway", "upstream_encoded_body", "compressed");
          return {};
        },
      },
    );
    const { res, body } = await get(r.port);
    const got = await body;
    expect(res.statusCode).toBe(502);
    expect(res.headers["x-refusal"]).toBe("upstream_encoded_body");
    expect(res.headers["x-upstream"]).toBeUndefined();
    expect(got.data.toString()).toBe("");
    await closed;
    const outcome = await r.outcomes[0]!;
    expect(outcome.status).toBe(200);
    expect(outcome.failure?.code).toBe("upstream_encoded_body");
  });

  it("answers a clear refusal when the upstream cannot be reached", async () => {
    // A port that was open a moment ago and is closed now.
    const probe = createNetServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const closedPort = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const r = await rig(() => undefined, { redaction, upstreamPort: closedPort });
    const { res } = await get(r.port);
    expect(res.statusCode).toBe(502);
    expect(res.headers["x-refusal"]).toBe("upstream_unreachable");
    expect((await r.outcomes[0])!.status).toBe(0);
  });

  it("passes over 1xx informational answers and relays the response that follows", async () => {
    const r = await rig((_req, res) => {
      res.writeEarlyHints({ link: "</style.css>; rel=preload" });
      setTimeout(() => {
        res.writeHead(200, { "content-length": "5" });
        res.end("after");
      }, 10);
    }, { redaction });
    const { res, body } = await get(r.port);
    expect(res.statusCode).toBe(200);
    expect((await body).data.toString()).toBe("after");
    expect(await r.outcomes[0]).toEqual({ status: 200, failure: null, cut: null });
  });
});

describe("ResponseRelay: redaction", () => {
  const redaction = () => new StreamRedaction(patternFor([RELAY_SECRET])!);

  it("redacts a secret split across the upstream's chunks", async () => {
    const r = await rig((_req, res) => {
      res.writeHead(200);
      res.write(`{"echo":"${RELAY_SECRET.slice(0, 10)}`);
      setTimeout(() => res.end(`${RELAY_SECRET.slice(10)}"}`), 20);
    }, { redaction });
    const { body } = await get(r.port);
    const got = await body;
    expect(got.complete).toBe(true);
    expect(got.data.toString()).toBe(`{"echo":"${stars}"}`);
  });

  it("sends a small redacted body that arrives whole with its end in one write to the client's socket", async () => {
    const text = `{"id":42,"echo":"${RELAY_SECRET}","padding":"${"p".repeat(80)}"}`;
    let writes = -1;
    const r = await rig(
      (_req, res) => {
        res.writeHead(200, { "content-length": String(text.length) });
        res.end(text);
      },
      {
        redaction,
        before: (req) => {
          const socket = req.socket as unknown as { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
          let count = 0;
          for (const name of ["_write", "_writev"] as const) {
            const original = socket[name].bind(socket);
            socket[name] = (...a: unknown[]) => {
              count++;
              original(...a);
            };
          }
          setTimeout(() => (writes = count), 200);
        },
      },
    );
    const { body } = await get(r.port);
    const got = await body;
    expect(got.data.toString()).toBe(text.replace(RELAY_SECRET, stars));
    await sleep(250);
    // Headers, the redacted part and the held-back tail: one write, not two.
    expect(writes).toBe(1);
  });

  it("sends a redacted stream that goes on as it comes, without waiting for its end", async () => {
    let finish!: () => void;
    const r = await rig((_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      // An event of a server-sent stream; the stream stays open.
      res.write(`data: {"n":1,"key":"${RELAY_SECRET}","note":"${"x".repeat(60)}"}\n\n`);
      finish = () => res.end();
    }, { redaction });
    const { body, sofar } = await get(r.port);
    const deadline = Date.now() + 2000;
    while (!sofar().includes('"note"') && Date.now() < deadline) await sleep(5);
    expect(sofar()).toContain(`"n":1,"key":"${stars}"`);
    finish();
    expect((await body).complete).toBe(true);
  });

  it("delivers pipelined redacted responses whole and in order, including those relayed before their turn on the connection", async () => {
    const texts = [0, 1, 2].map((i) => `{"i":${i},"echo":"${RELAY_SECRET}","pad":"${"p".repeat(100 + i * 50)}"}`);
    const r = await rig((req, res) => {
      const text = texts["abc".indexOf(req.url!.slice(1))]!;
      res.writeHead(200, { "content-length": String(text.length) });
      // The first answer is slow: the others are relayed while their responses wait for the connection.
      if (text === texts[0]) setTimeout(() => res.end(text), 50);
      else {
        res.write(text.slice(0, 60));
        setTimeout(() => res.end(text.slice(60)), 5);
      }
    }, { redaction });
    const socket = connect(r.port, "127.0.0.1");
    let got = "";
    socket.on("data", (d: Buffer) => (got += d.toString()));
    socket.write("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n");
    const deadline = Date.now() + 3000;
    while ((got.match(/HTTP\/1\.1 200/g) ?? []).length < 3 || !got.endsWith("}")) {
      if (Date.now() > deadline) break;
      await sleep(10);
    }
    socket.destroy();
    const bodies = got.split(/\r\n\r\n/).filter((_part, i) => i > 0).map((part) => part.replace(/HTTP\/1\.1 200[^]*$/, ""));
    expect(bodies).toEqual(texts.map((t) => t.replace(RELAY_SECRET, stars)));
  });
});
