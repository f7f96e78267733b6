/**
 * Path N, the Node floor: a minimal forward proxy (node:http server + one undici keep-alive pool
 * + one injected header). It accepts the same absolute-form requests agents send to Bulkhead,
 * sends them to the bench upstream (as Bulkhead's injected DNS would), strips the proxy's own
 * headers and injects `Authorization`. No token, policy, audit or redaction: what any Node proxy pays.
 *   env: BENCH_UPSTREAM_PORT, BENCH_SECRET
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Pool } from "undici";
import { announce, serve } from "./support/ipc";

const pool = new Pool(`http://127.0.0.1:${process.env.BENCH_UPSTREAM_PORT}`, { connections: 64, pipelining: 1, keepAliveTimeout: 30_000 });
const credential = `Bearer ${process.env.BENCH_SECRET ?? ""}`;
const HOP = new Set(["connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"]);

const server = http.createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
  let target: URL;
  try {
    target = new URL(req.url ?? "");
  } catch {
    res.writeHead(400).end();
    return;
  }
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP.has(k)) headers[k] = v;
  headers.host = target.host;
  headers.authorization = credential;
  const hasBody = req.method !== "GET" && req.method !== "HEAD";
  pool.request({ method: req.method as "GET", path: target.pathname + target.search, headers, body: hasBody ? req : null }).then(
    (up) => {
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !HOP.has(k)) out[k] = v;
      res.writeHead(up.statusCode, out);
      up.body.pipe(res);
    },
    () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    },
  );
});

server.listen(0, "127.0.0.1", () => {
  serve({}, async () => {
    server.closeAllConnections();
    server.close();
    await pool.close();
  });
  announce({ pid: process.pid, port: (server.address() as AddressInfo).port });
});
