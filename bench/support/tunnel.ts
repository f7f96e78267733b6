import net from "node:net";
import tls from "node:tls";
import type { Target } from "../load";

/**
 * An undici connector that opens each connection through an explicit proxy: CONNECT (with the
 * task token), then TLS inside the tunnel with the target's SNI, trusting the proxy's CA. The
 * pool keeps the TLS connection alive, so each connection pays CONNECT and the handshake once
 * (or, for a new-connection-per-request scenario, every request does).
 */
export function tunnelConnector(t: Extract<Target, { kind: "tunnel" }>, token: string | undefined) {
  const proxy = new URL(t.proxy);
  // One context for all connections: `ca` on each tls.connect would parse the CA and build a
  // context per handshake, client-side work that would cap a new-connection-per-request run.
  const secureContext = tls.createSecureContext({ ca: t.caPem });
  return (_options: unknown, callback: (...args: [null, net.Socket] | [Error, null]) => void) => {
    let settled = false;
    const done = (error: Error | null, socket?: net.Socket) => {
      if (settled) return;
      settled = true;
      if (error) callback(error, null);
      else callback(null, socket!);
    };
    const raw = net.connect({ host: proxy.hostname, port: Number(proxy.port), noDelay: true });
    raw.once("error", (e) => done(e));
    raw.once("connect", () => {
      raw.write(`CONNECT ${t.connect} HTTP/1.1\r\nHost: ${t.connect}\r\n${token ? `Proxy-Authorization: Bearer ${token}\r\n` : ""}\r\n`);
    });
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      raw.off("data", onData);
      raw.pause();
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head.subarray(0, end).toString("latin1"))?.[1] ?? 0);
      if (status !== 200) {
        raw.destroy();
        done(Object.assign(new Error(`CONNECT answered ${status}`), { code: `connect_${status}` }));
        return;
      }
      const rest = head.subarray(end + 4);
      if (rest.length) raw.unshift(rest);
      const secure = tls.connect({ socket: raw, servername: t.servername, secureContext, ALPNProtocols: ["http/1.1"] });
      secure.once("secureConnect", () => done(null, secure));
      secure.once("error", (e) => done(e));
    };
    raw.on("data", onData);
  };
}
