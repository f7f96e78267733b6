import http from "node:http";
import type { Duplex } from "node:stream";
import type { Logger } from "@/lib/log";
import { tokenFromProxyAuthorization } from "./credentials";
import { ProxyRefusal, refusalResponse } from "./errors";
import { handleProxyRequest, sendRefusal, type HandlerDeps } from "./handler";

export interface ListenerLimits {
  /** Larger request heads get 431 from Node's parser before anything is buffered. */
  maxHeaderBytes: number;
  /** Whole request (head and body) must arrive within this. */
  requestTimeoutMs: number;
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

/** Writes a refusal on a raw socket (CONNECT, upgrades, parse errors) and closes it. */
export function writeRawRefusal(socket: Duplex, refusal: ProxyRefusal): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const r = refusalResponse(refusal);
  const head = [`HTTP/1.1 ${r.status} ${http.STATUS_CODES[r.status] ?? ""}`, ...Object.entries(r.headers).map(([k, v]) => `${k}: ${v}`)].join("\r\n");
  socket.end(`${head}\r\n\r\n${r.body}`);
}

/**
 * Common server plumbing for every listener: strict limits, parse errors answered with a clear
 * status (431 for oversized heads, 400 otherwise), and protocol upgrades refused (no uninspected
 * tunnels). Each request on a keep-alive connection goes through the handler on its own.
 */
export function createProxyServer(limits: ListenerLimits, log: Logger, onRequest: http.RequestListener): http.Server {
  const server = http.createServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      requestTimeout: limits.requestTimeoutMs,
      headersTimeout: limits.headersTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // How often slow clients are checked against the timeouts above.
      connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
      // Header names and values are validated strictly; lenient parsing enables smuggling.
      insecureHTTPParser: false,
      joinDuplicateHeaders: false,
    },
    onRequest,
  );
  server.on("clientError", (error: NodeJS.ErrnoException, socket) => {
    const code = error.code ?? "";
    const refusal =
      code === "HPE_HEADER_OVERFLOW"
        ? new ProxyRefusal("headers_too_large", "headers_too_large", "request headers are too large")
        : code === "ERR_HTTP_REQUEST_TIMEOUT"
          ? new ProxyRefusal("client_timeout", "client_timeout", "the request did not arrive in time")
          : new ProxyRefusal("malformed", "http_parse_error", `the request could not be parsed (${code || "parse error"})`);
    log.debug({ code }, "client error");
    writeRawRefusal(socket, refusal);
  });
  server.on("upgrade", (_req, socket) => {
    writeRawRefusal(socket, new ProxyRefusal("denied", "upgrade_refused", "protocol upgrades are not allowed through Bulkhead"));
  });
  return server;
}

/**
 * The explicit forward proxy: absolute-form HTTP requests and CONNECT, with the agent's task
 * token in Proxy-Authorization.
 */
export function createExplicitListener(
  deps: HandlerDeps,
  limits: ListenerLimits,
  onConnect: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void,
): http.Server {
  const server = createProxyServer(limits, deps.log, (req, res) => {
    const target = req.url ?? "";
    if (!/^https?:\/\//i.test(target)) {
      sendRefusal(res, new ProxyRefusal("malformed", "not_absolute_form", "this is a forward proxy: send requests in absolute form (http://host/path)"));
      return;
    }
    void handleProxyRequest(deps, req, res, {
      listener: "explicit",
      identity: { kind: "token", token: tokenFromProxyAuthorization(req.headers["proxy-authorization"]) },
      url: target,
    });
  });
  server.on("connect", onConnect);
  return server;
}
