// The client side of the sandbox benchmark, run either inside a sandbox (transparent: no proxy,
// the fence captures it) or in the host namespace through the explicit proxy with a task token.
// Measures sequential keep-alive requests, an open loop at a fixed rate over keep-alive
// connections (latency from each request's intended send time, so a queue behind a slow answer
// counts), then fresh connections (TCP + TLS through interception + one request). Prints one JSON
// line of latencies in microseconds.
import http from "node:http";
import net from "node:net";
import tls from "node:tls";
import { readFileSync } from "node:fs";

const [mode, requests, fresh, proxyHost, proxyPort, token, caFile] = process.argv.slice(2);
// The bar's rate (BENCHMARKS.md: the transparent path's p50 at 1k rps), the same in both modes.
const RATE = 1000;
const OPEN_SECONDS = 3;
const OPEN_CONNECTIONS = 32;
const N = Number(requests);
const M = Number(fresh);
const ca = caFile ? readFileSync(caFile, "utf8") : undefined;
const now = () => process.hrtime.bigint();
const us = (start) => Number(now() - start) / 1000;

function readResponse(socket) {
  return new Promise((resolve, reject) => {
    let data = "";
    const done = () => {
      socket.off("data", onData).off("error", onError).off("close", onClose);
    };
    const onData = (c) => {
      data += c.toString("latin1");
      const head = data.indexOf("\r\n\r\n");
      const len = /\r\ncontent-length: *(\d+)/i.exec(data);
      if (head >= 0 && len && data.length >= head + 4 + Number(len[1])) {
        done();
        resolve(data.slice(0, 12));
      }
    };
    const onError = (error) => {
      done();
      reject(error);
    };
    // A connection closed before the answer is a failure, not a wait forever.
    const onClose = () => {
      done();
      reject(new Error(`connection closed before the response${data ? ` (got ${JSON.stringify(data.slice(0, 80))})` : ""}`));
    };
    socket.on("data", onData).on("error", onError).on("close", onClose);
  });
}

const target = mode === "explicit" ? "http://plain.bench.test/x" : "/x";
const auth = mode === "explicit" ? `Proxy-Authorization: Bearer ${token}\r\n` : "";
const plainRequest = `GET ${target} HTTP/1.1\r\nHost: plain.bench.test\r\n${auth}\r\n`;

async function plainConnection() {
  const socket = mode === "explicit" ? net.connect(Number(proxyPort), proxyHost) : net.connect(80, "plain.bench.test");
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  socket.setNoDelay(true);
  return socket;
}

async function keepAlive() {
  const socket = await plainConnection();
  const out = [];
  for (let i = 0; i < N; i++) {
    const t = now();
    socket.write(plainRequest);
    const status = await readResponse(socket);
    if (!status.includes("200")) throw new Error(`keep-alive request ${i}: ${status}`);
    out.push(us(t));
  }
  socket.destroy();
  return out;
}

/**
 * RATE requests a second over up to OPEN_CONNECTIONS keep-alive connections, one request at a
 * time on each: a request whose time has come takes the connection idle longest, or opens one,
 * or waits for one, and its latency runs from when it should have been sent. Half a second of the
 * same load first (not recorded) opens the connections, so that none sits silent past the
 * sandbox listener's sniff window (a connection that says nothing for BULKHEAD_SANDBOX_SNIFF_MS
 * is judged a raw TCP client) and none is opened inside the measured seconds.
 */
async function openLoop() {
  const all = [];
  const free = [];
  const phase = (seconds, record) =>
    new Promise((resolve, reject) => {
      const total = Math.round(RATE * seconds);
      const gapNs = 1e9 / RATE;
      const start = now() + 5_000_000n;
      const waiting = [];
      const out = [];
      let sent = 0;
      let answered = 0;
      const send = (socket, intended) => {
        // A connection the server closed while it was idle would never answer.
        if (socket.destroyed) return reject(new Error("open loop: a keep-alive connection was closed by the other side"));
        socket.write(plainRequest);
        readResponse(socket).then((status) => {
          if (!status.includes("200")) return reject(new Error(`open-loop request: ${status}`));
          if (record) out.push(Number(now() - intended) / 1000);
          if (++answered === total) return resolve(out);
          const next = waiting.shift();
          if (next !== undefined) send(socket, next);
          else free.push(socket);
        }, reject);
      };
      const dispatch = (intended) => {
        const socket = free.shift();
        if (socket) return send(socket, intended);
        if (all.length < OPEN_CONNECTIONS) {
          const opening = plainConnection();
          all.push(opening);
          return opening.then((s) => send(s, intended), reject);
        }
        waiting.push(intended);
      };
      const tick = () => {
        const t = now();
        while (sent < total && start + BigInt(Math.round(sent * gapNs)) <= t) dispatch(start + BigInt(Math.round(sent++ * gapNs)));
        if (sent < total) setTimeout(tick, 1);
      };
      tick();
    });
  await phase(0.5, false);
  const out = await phase(OPEN_SECONDS, true);
  for (const s of await Promise.all(all)) s.destroy();
  return out;
}

async function freshConnection() {
  const t = now();
  let raw;
  if (mode === "explicit") {
    raw = net.connect(Number(proxyPort), proxyHost);
    await new Promise((r) => raw.once("connect", r));
    raw.write(`CONNECT tls.bench.test:443 HTTP/1.1\r\nHost: tls.bench.test:443\r\nProxy-Authorization: Bearer ${token}\r\n\r\n`);
    await new Promise((resolve, reject) => {
      let d = "";
      const on = (c) => {
        d += c.toString("latin1");
        if (d.includes("\r\n\r\n")) {
          raw.off("data", on);
          if (d.startsWith("HTTP/1.1 200")) resolve();
          else reject(new Error(d.slice(0, 60)));
        }
      };
      raw.on("data", on);
    });
  } else {
    raw = net.connect(443, "tls.bench.test");
    await new Promise((r) => raw.once("connect", r));
  }
  const secure = tls.connect({ socket: raw, servername: "tls.bench.test", ca });
  await new Promise((resolve, reject) => {
    secure.once("secureConnect", resolve);
    secure.once("error", reject);
  });
  secure.write("GET /y HTTP/1.1\r\nHost: tls.bench.test\r\nConnection: close\r\n\r\n");
  const status = await readResponse(secure);
  if (!status.includes("200")) throw new Error(`fresh connection: ${status}`);
  const elapsed = us(t);
  secure.destroy();
  return elapsed;
}

const warm = await keepAlive().catch((e) => ({ error: String(e) }));
if (warm.error) {
  console.log(JSON.stringify({ error: warm.error }));
  process.exit(1);
}
const keep = await keepAlive();
const open = await openLoop();
const newConn = [];
await freshConnection(); // warm the leaf certificate and the upstream pool
for (let i = 0; i < M; i++) newConn.push(await freshConnection());
console.log(JSON.stringify({ keepAlive: keep, openLoop: open, newConnection: newConn }));
// An http import keeps Node's HTTP parser warm in both modes alike.
void http;
