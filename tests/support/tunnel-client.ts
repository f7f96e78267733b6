import http from "node:http";
import type net from "node:net";
import tls from "node:tls";

/** Opens a CONNECT tunnel through the explicit proxy; resolves with the status and the raw socket. */
export function connectTunnel(proxyPort: number, target: string, headers: Record<string, string> = {}): Promise<{ status: number; socket: net.Socket; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port: proxyPort, method: "CONNECT", path: target, headers: { host: target, ...headers }, agent: false });
    req.on("connect", (res, socket, head: Buffer) => {
      if (res.statusCode === 200) {
        if (head.length) socket.unshift(head);
        return resolve({ status: 200, socket, body: "" });
      }
      const chunks: Buffer[] = [head];
      socket.on("data", (c: Buffer) => chunks.push(c));
      socket.on("end", () => resolve({ status: res.statusCode ?? 0, socket, body: Buffer.concat(chunks).toString("utf8") }));
      socket.on("error", () => resolve({ status: res.statusCode ?? 0, socket, body: Buffer.concat(chunks).toString("utf8") }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** TLS over a tunnel, trusting `ca`; `servername` is what the client puts in SNI. */
export function tlsOver(socket: net.Socket, servername: string, ca: string): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ socket, servername, ca });
    s.once("secureConnect", () => resolve(s));
    s.once("error", reject);
  });
}

/** Sends raw bytes on a socket and collects everything until the peer closes (or `idleMs` passes). */
export function exchange(socket: net.Socket | tls.TLSSocket, raw: string, idleMs = 1500): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let timer = setTimeout(done, idleMs);
    function done() {
      socket.destroy();
      resolve(Buffer.concat(chunks).toString("utf8"));
    }
    socket.on("data", (c: Buffer) => {
      chunks.push(c);
      clearTimeout(timer);
      timer = setTimeout(done, idleMs);
    });
    socket.on("end", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString("utf8"));
    });
    socket.on("error", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString("utf8"));
    });
    socket.write(raw);
  });
}

/** Status codes of every HTTP response in a raw byte stream, in order. */
export function statuses(raw: string): number[] {
  return [...raw.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
}

/**
 * Sends one request on a connection that stays open (keep-alive) and resolves with the response
 * once its head and Content-Length body have arrived; rejects if the peer closes first.
 */
export function requestOn(socket: net.Socket | tls.TLSSocket, raw: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    if (socket.destroyed) return reject(new Error("the connection is closed"));
    let buffered = Buffer.alloc(0);
    const timer = setTimeout(() => finish(new Error("no complete response in time")), timeoutMs);
    const onData = (c: Buffer) => {
      buffered = Buffer.concat([buffered, c]);
      const text = buffered.toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) return;
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
      if (buffered.length >= end + 4 + length) finish(null, buffered.toString("utf8"));
    };
    const onClose = () => finish(new Error("the connection closed before the response was complete"));
    function finish(error: Error | null, out?: string) {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      if (error) reject(error);
      else resolve(out!);
    }
    socket.on("data", onData);
    socket.once("close", onClose);
    socket.write(raw);
  });
}

/** Resolves with how many milliseconds after `since` the socket closed (or rejects after `limitMs`). */
export function closedAfter(socket: net.Socket | tls.TLSSocket, since: number, limitMs = 5000): Promise<number> {
  return new Promise((resolve, reject) => {
    if (socket.destroyed && socket.closed) return resolve(performance.now() - since);
    const timer = setTimeout(() => reject(new Error(`the connection was still open ${limitMs} ms later`)), limitMs);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(performance.now() - since);
    });
  });
}
