/**
 * Dialing: open a socket to the exact address `resolveDestination` checked, and nothing else.
 *
 * - Only results made by `resolveDestination` are accepted (they are frozen and registered there),
 *   so a hand-built `{ address: "10.0.0.1" }` cannot be dialed.
 * - The socket is given the checked IP literal and a `lookup` that always fails, so Node never
 *   resolves a name on this path; the peer address is compared with the checked one once connected.
 * - For TLS, `host` is the checked IP and `servername` the original host (SNI and certificate
 *   verification); a servername other than the checked host is refused (no fronting another
 *   virtual host on the same address). An IP-literal host sends no SNI and is verified by IP.
 *
 * `checkedConnector` wraps the same dialer as an undici `connect` function. The forwarding code
 * makes one undici `Pool`/`Agent` per (service, checked destination) with it, so that pool can
 * never dial another address, port, scheme or TLS name, whatever origin or `Host` a request names.
 */
import net from "node:net";
import tls from "node:tls";
import type { buildConnector } from "undici";
import { parseHost } from "./address";
import { isCheckedDestination, type CheckedDestination } from "./resolve";

export interface DialOptions {
  /** Connect (and TLS handshake) timeout. */
  timeoutMs: number;
  tls?: { servername: string; ca?: tls.SecureContextOptions["ca"] };
}

export type DialErrorCode = "dial_refused" | "connect_timeout" | "connect_failed";

export class DialError extends Error {
  readonly code: DialErrorCode;
  constructor(code: DialErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "DialError";
    this.code = code;
  }
}

/** Connects to `result.address:result.port` (TLS when `options.tls` is given). */
export function dialChecked(result: CheckedDestination, options: DialOptions): Promise<net.Socket | tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    connectChecked(result, options, (error, socket) => (error ? reject(error) : resolve(socket as net.Socket)));
  });
}

/**
 * An undici `connect` function bound to one checked destination. It refuses (before opening any
 * socket) a call whose protocol, host, port or TLS servername is not that destination's.
 */
export function checkedConnector(result: CheckedDestination, options: DialOptions): buildConnector.connector {
  assertChecked(result);
  const protocol = options.tls ? "https:" : "http:";
  return (opts, callback) => {
    const mismatch = connectorMismatch(result, protocol, opts);
    if (mismatch !== null) {
      callback(new DialError("dial_refused", mismatch), null);
      return;
    }
    connectChecked(result, options, (error, socket) => (error ? callback(error, null) : callback(null, socket as net.Socket)));
  };
}

function connectorMismatch(result: CheckedDestination, protocol: string, opts: buildConnector.Options): string | null {
  const target = `${opts.protocol}//${opts.hostname}:${opts.port}`;
  const refuse = (why: string) => `connector for ${describe(result)} refuses ${target}: ${why}`;
  if (opts.socketPath || opts.httpSocket) return refuse("sockets and tunnels are not dialed here");
  if (opts.protocol !== protocol) return refuse(`protocol is not ${protocol}`);
  if (!sameHost(opts.hostname, result)) return refuse("host is not the checked host or address");
  const port = opts.port === "" ? (protocol === "https:" ? 443 : 80) : Number(opts.port);
  if (port !== result.port) return refuse("port is not the checked port");
  if (protocol === "https:" && opts.servername && !sameHost(opts.servername, result)) {
    return refuse(`TLS servername "${opts.servername}" is not the checked host`);
  }
  return null;
}

function sameHost(text: string, result: CheckedDestination): boolean {
  const parsed = parseHost(text);
  if (parsed.kind === "ip") return parsed.address === result.address;
  return parsed.kind === "name" && parsed.name === result.host;
}

type Done = (error: Error | null, socket: net.Socket | tls.TLSSocket | null) => void;

function connectChecked(result: CheckedDestination, options: DialOptions, done: Done): void {
  try {
    assertChecked(result);
  } catch (error) {
    done(error as Error, null);
    return;
  }
  let servername: string | undefined;
  if (options.tls) {
    const sni = sniFor(result, options.tls.servername);
    if (sni instanceof DialError) {
      done(sni, null);
      return;
    }
    servername = sni ?? undefined;
  }
  const base = { host: result.address, port: result.port, family: result.family, lookup: refuseLookup };
  const socket = options.tls
    ? tls.connect({ ...base, servername, ca: options.tls.ca, rejectUnauthorized: true, ALPNProtocols: ["http/1.1"] })
    : net.connect(base);
  let settled = false;
  const onError = (error: Error) =>
    finish(new DialError("connect_failed", `connect to ${describe(result)} failed: ${error.message}`, { cause: error }));
  const finish = (error: Error | null) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    socket.off("error", onError);
    if (error) {
      socket.destroy();
      done(error, null);
      return;
    }
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    done(null, socket);
  };
  const timer = setTimeout(
    () => finish(new DialError("connect_timeout", `connect to ${describe(result)} timed out after ${options.timeoutMs} ms`)),
    options.timeoutMs,
  );
  socket.once(options.tls ? "secureConnect" : "connect", () => {
    // Belt and braces: the kernel's peer must be the address that was checked.
    const peer = socket.remoteAddress === undefined ? null : parseHost(socket.remoteAddress);
    const peerAddress = peer?.kind === "ip" ? peer.address : String(socket.remoteAddress);
    if (peerAddress !== result.address) {
      finish(new DialError("dial_refused", `connected to ${peerAddress}, not the checked ${result.address}`));
      return;
    }
    finish(null);
  });
  socket.on("error", onError);
}

/** SNI for the TLS handshake: the checked host itself; null (no SNI) when that host is an IP. */
function sniFor(result: CheckedDestination, servername: string): string | null | DialError {
  if (!sameHost(servername, result)) {
    return new DialError("dial_refused", `TLS servername "${servername}" is not the checked host "${result.host}"`);
  }
  return result.host === result.address ? null : result.host;
}

function assertChecked(result: CheckedDestination): void {
  if (!isCheckedDestination(result)) {
    throw new DialError("dial_refused", "only destinations returned by resolveDestination may be dialed");
  }
}

const refuseLookup: net.LookupFunction = (hostname, _options, callback) => {
  callback(new DialError("dial_refused", `refusing to resolve "${hostname}": dial the checked address`), "");
};

function describe(result: CheckedDestination): string {
  const address = result.family === 6 ? `[${result.address}]` : result.address;
  return result.host === result.address ? `${address}:${result.port}` : `${result.host} (${address}):${result.port}`;
}
