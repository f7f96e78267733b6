/**
 * The bench upstream: a fixed-body JSON server on loopback, plain HTTP and HTTPS (a certificate
 * from the test CA). It counts requests per `x-bench-path` header and how many carried the
 * injected credential, so the report can show each proxy really injected it.
 *   env: BENCH_TLS_CERT, BENCH_TLS_KEY (PEM files), BENCH_SECRET (the injected bearer secret)
 */
import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { announce, serve } from "./support/ipc";

const BODY = Buffer.from(
  JSON.stringify([{ id: 1, number: 1347, state: "open", title: "Found a bug", user: { login: "octocat", id: 1 }, labels: [{ name: "bug" }], comments: 0 }]),
);
const expected = `Bearer ${process.env.BENCH_SECRET ?? ""}`;
const counts: Record<string, { requests: number; withCredential: number }> = {};

const onRequest: http.RequestListener = (req, res) => {
  const path = String(req.headers["x-bench-path"] ?? "-");
  const c = (counts[path] ??= { requests: 0, withCredential: 0 });
  c.requests++;
  if (req.headers.authorization === expected) c.withCredential++;
  req.resume();
  req.on("end", () => {
    res.writeHead(200, { "content-type": "application/json", "content-length": BODY.length });
    res.end(BODY);
  });
};

const options = { keepAliveTimeout: 60_000, headersTimeout: 20_000, requestTimeout: 30_000 };
const plain = http.createServer(options, onRequest);
const secure = https.createServer({ ...options, cert: readFileSync(process.env.BENCH_TLS_CERT!, "utf8"), key: readFileSync(process.env.BENCH_TLS_KEY!, "utf8") }, onRequest);
const listen = (s: http.Server) => new Promise<number>((r) => s.listen(0, "127.0.0.1", () => r((s.address() as AddressInfo).port)));

serve(
  {
    counts: () => counts,
    reset: () => {
      for (const k of Object.keys(counts)) delete counts[k];
    },
  },
  async () => {
    for (const s of [plain, secure]) {
      s.closeAllConnections();
      s.close();
    }
  },
);
announce({ pid: process.pid, httpPort: await listen(plain), httpsPort: await listen(secure), bodyBytes: BODY.length });
