// The dashboard's HTTP server, started by `bulkhead start`. It runs Next's production server and
// exits when its launcher goes away (IPC disconnect), so a killed launcher leaves no orphan.
import { randomBytes } from "node:crypto";
import http from "node:http";
import process from "node:process";
import { fileURLToPath } from "node:url";
import next from "next";
import { addressMatcher, allowedHostNames, bodyLimit, declaredTooLarge, dropForwardedHeaders, guardConnections, limitStreamedBody, malformedPath, malformedRouterState, misdirectedHost, refuseHost, refuseMalformed, refuseMethod, refuseTooLarge, refuseUnknownAction, servedMethod, unknownAction } from "./request-guard.mjs";
import { ACTION_MANIFEST_ENV, actionManifestFile, readActionIds } from "../lib/http/server-actions.mjs";

// Standard output and error whose reader went away (`npm start | tee log` with tee gone, a log
// collector restarted): the next write fails with EPIPE, emitted as an 'error' event on the
// stream. Unhandled, it reached Next's uncaughtException handler, which logs it with
// console.error, to the same closed stream: a new EPIPE, logged again, without end. The dashboard
// spun a core and stopped answering. Taken here, the stream is left closed and what would still be
// written to it is dropped (the audit log, not this output, is the record of what happened).
for (const stream of [process.stdout, process.stderr]) stream.on("error", () => undefined);

const host = process.env.BULKHEAD_APP_HOST ?? "127.0.0.1";
const port = Number(process.env.BULKHEAD_APP_PORT ?? 3000);
// Names a request may use to reach the dashboard (scripts/request-guard.mjs: DNS rebinding).
const allowedHosts = allowedHostNames(process.env);
// The reverse proxies whose X-Forwarded-* headers count (none unless configured).
const trustedProxy = addressMatcher(process.env.BULKHEAD_TRUSTED_PROXIES);

// Route handlers and server actions never see the socket, so this server tells them who the TCP
// peer is (lib/http/client-address.ts): it drops whatever a client sent under the header's name
// and adds the real address, behind a token only this process knows. Sign-in throttling and the
// audit rely on it; X-Forwarded-For counts only when this peer is a configured trusted proxy.
const PEER_HEADER = "x-bulkhead-peer";
const peerToken = randomBytes(32).toString("base64url");
process.env.BULKHEAD_INTERNAL_PEER_TOKEN = peerToken;

function stampPeer(req) {
  for (let i = req.rawHeaders.length - 2; i >= 0; i -= 2) {
    if (req.rawHeaders[i].toLowerCase() === PEER_HEADER) req.rawHeaders.splice(i, 2);
  }
  req.headers[PEER_HEADER] = `${peerToken};${req.socket.remoteAddress ?? ""}`;
}

// The checkout this file belongs to, not the working directory: the launcher may be run from anywhere.
const appDir = fileURLToPath(new URL("..", import.meta.url));
// proxy.ts checks the actions a form posted without JavaScript names against the same list.
const actionManifest = actionManifestFile(appDir);
process.env[ACTION_MANIFEST_ENV] = actionManifest;
const app = next({ dev: false, dir: appDir, hostname: host, port });
await app.prepare();
// The server actions this build has: a POST naming any other is answered here (request-guard.mjs).
const actionIds = readActionIds(actionManifest);
if (actionIds === null) console.warn("The build's server action manifest could not be read: requests naming unknown server actions go to Next.js.");
const handle = app.getRequestHandler();
function serve(req, res, continueFirst = false) {
  // Next.js answers these with a 500 (scripts/request-guard.mjs): refused here, with the reason.
  // A name that is not the dashboard's (a page that rebound its own name to this address): 421.
  const misdirected = misdirectedHost(req.headers.host, allowedHosts);
  if (misdirected) return refuseHost(req, res, misdirected);
  if (!servedMethod(req.method)) return refuseMethod(req, res);
  const malformed = malformedPath(req.url) ?? malformedRouterState(req.headers);
  if (malformed) return refuseMalformed(req, res, malformed);
  // A body larger than its path accepts: 413 before Next.js copies it (request-guard.mjs).
  const tooLarge = declaredTooLarge(req);
  if (tooLarge !== null) return refuseTooLarge(req, res, tooLarge);
  limitStreamedBody(req, res, bodyLimit(req.url));
  const unknown = unknownAction(req, actionIds);
  if (unknown !== null) return refuseUnknownAction(req, res, unknown);
  stampPeer(req);
  dropForwardedHeaders(req, trustedProxy);
  if (continueFirst) res.writeContinue();
  return handle(req, res);
}
const server = http.createServer(serve);
// Each request's head within a time limit, and caps on connections, overall and per client address
// (scripts/request-guard.mjs); a configured reverse proxy carries everyone's and is held to the
// overall cap only. Registered before the "checkContinue" handler below, so it sees those first.
guardConnections(server, { unlimited: trustedProxy });
// `Expect: 100-continue`: Node would answer "100 Continue" before any check ran, and the client
// would send a body that is then refused. The checks run first: a refused request (a body
// declared over its limit, a name or method not served) is answered without it, and the client
// never sends its body; anything else is told to go on and served as usual.
server.on("checkContinue", (req, res) => serve(req, res, true));
server.on("error", (error) => {
  console.error(error.code === "EADDRINUSE" ? `Port ${port} (BULKHEAD_APP_PORT) is already in use.` : String(error));
  process.exit(1);
});
server.listen(port, host, () => process.send?.({ type: "ready" }));

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 5000).unref();
}
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
process.on("SIGHUP", stop); // the terminal closed: the launcher, signalled too, stops everything in order
process.on("disconnect", stop);
