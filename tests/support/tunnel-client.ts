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
