// Requests the dashboard's server answers itself, before Next.js sees them (scripts/app-server.mjs):
// methods it does not serve (405), paths and router states that do not decode (400), names that
// are not the dashboard's (421), unknown server actions (as Next.js answers them) and bodies
// larger than their path accepts (413).
//
// A path segment whose percent-encoding does not decode (`/agents/%ff`, `/tasks/%E0%A4%A`) makes
// Next.js's production router throw while it decodes a dynamic segment, and the request ends as
// a 500 Internal Server Error, for signed-out visitors too. No page or route of the dashboard
// can mean such a path, so it is refused here as what it is: a malformed request (400), with a
// reason, the same on every path, before any page, route handler or session lookup runs.

import { createRequire } from "node:module";
import os from "node:os";
import { addressThrottleKey, isTrustedAddress, normalizeAddress, trustedList } from "../lib/http/client-addresses.mjs";
import { unknownActionAnswer, unknownActionStatus } from "../lib/http/server-actions.mjs";

/**
 * The methods the dashboard's pages and route handlers serve. Anything else is refused with 405
 * before Next.js sees it: Next.js builds a fetch `Request` for every request, and the fetch
 * standard forbids TRACE and TRACK, so those ended as a 500; the rest have nothing to reach.
 */
export const SERVED_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const SERVED = new Set(SERVED_METHODS);

/** Whether the dashboard serves `method` at all. */
export function servedMethod(method) {
  return SERVED.has(method);
}

/** Answers a request whose method the dashboard does not serve: 405 with the methods it does. */
export function refuseMethod(req, res) {
  const reason = `the dashboard does not serve ${JSON.stringify(String(req.method).slice(0, 32))} requests`;
  answer(req, res, 405, { error: "method_not_allowed", message: `${reason}.`, text: `Method not allowed: ${reason}.` }, { allow: SERVED_METHODS.join(", ") });
}

/** Why `url` (a request target as received) cannot be served, or null when its path decodes. */
export function malformedPath(url) {
  if (typeof url !== "string" || url.length === 0) return "the request has no target";
  // Only origin form (`/path?query`): an absolute-form target (`GET http://evil.example/x`) named
  // a host the Host check never saw, and Next.js answered it with a 308 to that host.
  if (url[0] !== "/" && url !== "*") return "the request target must be a path (/…), not a URL or another form";
  const query = url.indexOf("?");
  const path = query < 0 ? url : url.slice(0, query);
  if (!path.includes("%")) return null;
  for (const segment of path.split("/")) {
    if (!segment.includes("%")) continue;
    try {
      decodeURIComponent(segment);
    } catch {
      return "the URL's path is not valid percent-encoding (each % must start an escape of UTF-8 bytes)";
    }
  }
  return null;
}

/** Answers a request whose path is malformed: 400, JSON for the API, plain text elsewhere; nothing cached or sniffed. */
export function refuseMalformed(req, res, reason) {
  answer(req, res, 400, { error: "invalid_input", message: `The request is not valid: ${reason}.`, text: `Bad request: ${reason}.` });
}

// A client-side navigation sends `Next-Router-State-Tree`: which segments the browser already has.
// Next.js parses it while rendering and throws on one it cannot parse (not JSON, not its shape,
// too long, sent twice), and the request ended as a 500 with the error logged, for signed-out
// visitors too. It is checked here with Next.js's own parser, so both agree on what is valid.
const requireFromNext = createRequire(import.meta.url);
let parseRouterState = null;
try {
  ({ parseAndValidateFlightRouterState: parseRouterState } = requireFromNext("next/dist/server/app-render/parse-and-validate-flight-router-state.js"));
} catch {
  // A Next.js without this module: its own parser answers, as before.
}

/** Why the request's router state header cannot be used, or null when there is none or it parses. */
export function malformedRouterState(headers) {
  const value = headers["next-router-state-tree"];
  if (value === undefined || parseRouterState === null) return null;
  try {
    parseRouterState(value);
    return null;
  } catch {
    return "the Next-Router-State-Tree header is not a router state this dashboard can read";
  }
}

// DNS rebinding. A page on a name its author controls (http://rebind.example:3000) can make that
// name resolve to 127.0.0.1 once the page has loaded: its later requests then reach the dashboard
// as same-origin requests, which the browser lets the page read. They carry none of the
// dashboard's own cookies (those belong to the name the person uses), but the page can sign in
// with guesses, lock every loopback sign-in out with wrong ones (the throttle counts per address),
// and once a guess is right act with that session, since an Origin that names the request's own
// Host passes the same-origin checks. So the dashboard answers only names that are its own: the
// public URL's, its listening address, BULKHEAD_ALLOWED_HOSTS, and names no page can rebind (an IP
// address, `localhost` and `*.localhost`, which browsers resolve to loopback themselves), and the
// machine's own host name (a page cannot rebind a name it does not own; on a dashboard that
// listens on every address, people reach it by that name).

/** The host names (lower case) a request may name besides IP addresses and `localhost`, from the dashboard's settings. */
export function allowedHostNames(env) {
  const names = new Set();
  const add = (name) => {
    const value = String(name ?? "").trim().toLowerCase().replace(/\.$/, "");
    if (value) names.add(value);
  };
  if (env.BULKHEAD_PUBLIC_URL) {
    try {
      add(new URL(env.BULKHEAD_PUBLIC_URL).hostname);
    } catch {
      // Validated by the launcher (lib/config/app.ts); nothing to add from a value that is not a URL.
    }
  }
  add(env.BULKHEAD_APP_HOST);
  add(os.hostname());
  for (const name of String(env.BULKHEAD_ALLOWED_HOSTS ?? "").split(",")) add(name);
  return names;
}

function isIpLiteral(hostname) {
  if (hostname.startsWith("[") && hostname.endsWith("]")) return true;
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(hostname);
}

/** Why a request naming `host` (its Host header) is not for this dashboard, or null when it is. */
export function misdirectedHost(host, allowed) {
  // No Host at all is no browser's request (Node refuses an HTTP/1.1 request without one).
  if (host === undefined || host === "") return null;
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::\d{1,5})?$/.exec(host);
  if (!match) return "the Host header is not a host name";
  const hostname = match[1].toLowerCase().replace(/\.$/, "");
  if (isIpLiteral(hostname) || hostname === "localhost" || hostname.endsWith(".localhost") || allowed.has(hostname)) return null;
  return `${JSON.stringify(hostname.slice(0, 100))} is not a name of this dashboard (set BULKHEAD_PUBLIC_URL to the URL people use, or list other names in BULKHEAD_ALLOWED_HOSTS)`;
}

// Server actions that do not exist (lib/http/server-actions.mjs): a POST to a page whose
// `Next-Action` header names an id this build does not have is answered as Next.js answers it,
// before Next.js sees it, without Next.js's log line. Route handlers (/api/) run no actions and
// are left alone.

/** The status for a POST naming a server action this build does not have (409, or 400 for an id of no valid shape), or null. */
export function unknownAction(req, known) {
  if (known === null || req.method !== "POST") return null;
  const id = req.headers["next-action"];
  if (id === undefined || (req.url ?? "").startsWith("/api/")) return null;
  return known.has(id) ? null : unknownActionStatus(id);
}

/** Answers it as Next.js does, unlogged. */
export function refuseUnknownAction(req, res, status) {
  const { body, headers } = unknownActionAnswer(status);
  res.writeHead(status, { ...headers, "content-length": Buffer.byteLength(body) });
  res.end(body);
}

// Bodies. Next.js copies the body of every request its proxy (proxy.ts) sees, up to 10 MB, before
// any of the dashboard's code runs, whoever sends it: a signed-out client could make the dashboard
// hold 10 MB per request, on as many connections as it may open, for bodies nothing would accept
// (a server action takes at most the form limit, a route handler at most the API's JSON limit).
// So a body larger than what its path accepts is refused here: by its declared length at once,
// without reading it; one sent without a length (chunked) once that much has arrived, and
// nothing beyond it reaches Next.js.

/** The form limit (lib/http/form-limit.ts) and the API's JSON limit (lib/http/route.ts); a unit test keeps them equal. */
export const FORM_BODY_LIMIT_BYTES = 1024 * 1024;
export const API_BODY_LIMIT_BYTES = 4 * 1024 * 1024;

/** The most a request to `url` may carry: the API's JSON limit under /api/, the form limit elsewhere. */
export function bodyLimit(url) {
  return (url ?? "").startsWith("/api/") ? API_BODY_LIMIT_BYTES : FORM_BODY_LIMIT_BYTES;
}

/** The limit a request's declared Content-Length is over, or null (none declared, or within it). */
export function declaredTooLarge(req) {
  const declared = req.headers["content-length"];
  if (declared === undefined) return null;
  const limit = bodyLimit(req.url);
  return Number(declared) > limit ? limit : null;
}

function tooLargeText(limit) {
  const mib = `${limit / (1024 * 1024)} MiB`;
  return { error: "payload_too_large", message: `The request body is larger than ${mib}; nothing was read or changed.`, text: `Payload too large: the request body is larger than the ${mib} this dashboard accepts here; nothing was read or changed.` };
}

/**
 * A declared body up to this size that is refused is still read off the connection and thrown
 * away as it arrives (nothing of it is kept), so that a client that sends its whole body before it
 * reads the answer (most HTTP libraries) gets the 413 instead of a reset connection. A larger one
 * is not read at all: the connection closes after the answer.
 */
export const DISCARD_MAX_BYTES = 64 * 1024 * 1024;

/** Answers a request whose declared body is over its limit: 413 before any of the body is read (see DISCARD_MAX_BYTES). */
export function refuseTooLarge(req, res, limit) {
  // A client that asked first (`Expect: 100-continue`) sends no body: nothing is left to read.
  const close = req.headers.expect !== undefined || Number(req.headers["content-length"]) > DISCARD_MAX_BYTES;
  answer(req, res, 413, tooLargeText(limit), close ? { connection: "close" } : {});
}

/**
 * Counts a body sent without a declared length as Node's parser hands it to the request. Past
 * `limit` nothing more is passed on: the client is answered 413 on the connection when no answer
 * has started (else it is only closed), and the connection is closed. Next.js, still reading the
 * body, sees the request aborted, as when a client goes away.
 */
export function limitStreamedBody(req, res, limit) {
  if (req.headers["content-length"] !== undefined) return; // Node's parser stops at the declared length
  let size = 0;
  let over = false;
  const push = req.push;
  req.push = function pushWithinLimit(chunk, encoding) {
    if (over) return false;
    if (chunk !== null && chunk !== undefined) {
      size += chunk.length;
      if (size > limit) {
        over = true;
        refuseStreamed(req, res, limit);
        return false;
      }
    }
    return push.call(this, chunk, encoding);
  };
}

function refuseStreamed(req, res, limit) {
  const socket = req.socket;
  if (!socket || socket.destroyed) return;
  if (res.headersSent || !socket.writable) {
    socket.destroy();
    return;
  }
  const { body, headers } = answerParts(req, tooLargeText(limit), { connection: "close" });
  const head = ["HTTP/1.1 413 Payload Too Large", ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`)].join("\r\n");
  // Written on the connection itself: the response object is Next.js's now, and stays unwritten.
  // Nothing more is read (the parser is paused with the request); the connection is closed a
  // moment after the answer has left, so that a client reading as it sends gets the answer before
  // the reset that closing over unread bytes causes.
  socket.end(`${head}\r\n\r\n${req.method === "HEAD" ? "" : body}`, () => setTimeout(() => socket.destroy(), 1_000).unref());
  setTimeout(() => socket.destroy(), 5_000).unref();
}

/** Answers a request for a name the dashboard does not serve: 421 Misdirected Request, nothing else runs. */
export function refuseHost(req, res, reason) {
  answer(req, res, 421, { error: "misdirected_request", message: `Refused: ${reason}.`, text: `Misdirected request: ${reason}.` });
}

/**
 * Every answer the server gives itself: JSON under /api/, plain text elsewhere; never cached,
 * sniffed or run as a page; no body for HEAD.
 */
function answer(req, res, status, texts, headers = {}) {
  const parts = answerParts(req, texts, headers);
  res.writeHead(status, parts.headers);
  res.end(req.method === "HEAD" ? undefined : parts.body);
}

/** The body and headers of such an answer. */
function answerParts(req, { error, message, text }, headers = {}) {
  const api = (req.url ?? "").startsWith("/api/");
  const body = api ? `${JSON.stringify({ error, message })}\n` : `${text}\n`;
  return {
    body,
    headers: {
      ...headers,
      "content-type": api ? "application/json" : "text/plain; charset=utf-8",
      "content-length": Buffer.byteLength(body),
      "cache-control": "no-store",
      "content-security-policy": "default-src 'none'",
      "x-content-type-options": "nosniff",
    },
  };
}

/**
 * Headers in which a reverse proxy tells the server which host and scheme the client used. Next.js
 * takes them as they come (it only fills them in when they are missing): the host and scheme of
 * the URLs it makes for a server action (where it fetches the page a redirect leads to) and the
 * host its own server-action origin check compares with. From a client that is not a configured
 * reverse proxy they are whatever that client chose, so they are dropped before Next.js sees the
 * request and Next.js fills them in from the connection; BULKHEAD_TRUSTED_PROXIES keeps them.
 */
export const FORWARDED_HEADERS = ["x-forwarded-host", "x-forwarded-proto", "x-forwarded-port", "forwarded"];

/** Removes FORWARDED_HEADERS from `req` unless its TCP peer is a trusted proxy (`trusted`, from addressMatcher). */
export function dropForwardedHeaders(req, trusted) {
  if (trusted(req.socket?.remoteAddress)) return;
  for (const name of FORWARDED_HEADERS) delete req.headers[name];
  for (let i = req.rawHeaders.length - 2; i >= 0; i -= 2) {
    if (FORWARDED_HEADERS.includes(req.rawHeaders[i].toLowerCase())) req.rawHeaders.splice(i, 2);
  }
}

/**
 * What a connection to the dashboard may hold. Node's HTTP server closes neither a connection that
 * never sends a byte nor one that sends its request head a byte at a time, and it takes
 * connections without limit: anyone who can reach the port could hold every file descriptor of
 * the dashboard (and with them its database connections' room) open at no cost. So each request's
 * head must be complete within `headTimeoutMs` of the connection's start or of the end of the
 * response before it; a request in progress (a long download, the live approvals stream) is
 * never cut by this. Beyond `maxConnections` a new connection is closed at once, and so is one
 * beyond `maxPerAddress` from one client address (an IPv6 client counts by its /64, which one
 * host usually holds whole): one client cannot take every connection the dashboard has room for
 * and lock everyone else out. Addresses `unlimited` names (the configured reverse proxies, which
 * carry everyone's connections) are held to the overall cap only.
 */
export const APP_HEAD_TIMEOUT_MS = 10_000;
export const APP_MAX_CONNECTIONS = 1024;
export const APP_MAX_CONNECTIONS_PER_ADDRESS = 256;

/** The key a connection counts under: its address, or an IPv6 address's /64 (as sign-in throttling counts). */
export function connectionKey(address) {
  const normal = normalizeAddress(address ?? "");
  return normal === null ? String(address ?? "") : addressThrottleKey(normal);
}

const HEAD_TIMER = Symbol("bulkhead.headTimer");
const IN_FLIGHT = Symbol("bulkhead.inFlight");

/**
 * Whether a connection's address is one of BULKHEAD_TRUSTED_PROXIES: the same match the app uses
 * to believe X-Forwarded-For (lib/http/client-addresses.mjs).
 */
export function addressMatcher(value) {
  const list = trustedList(value);
  if (list.length === 0) return () => false;
  return (address) => typeof address === "string" && isTrustedAddress(address, list);
}

export function guardConnections(server, { headTimeoutMs = APP_HEAD_TIMEOUT_MS, maxConnections = APP_MAX_CONNECTIONS, maxPerAddress = APP_MAX_CONNECTIONS_PER_ADDRESS, unlimited = () => false } = {}) {
  server.maxConnections = maxConnections;
  const perAddress = new Map();
  const arm = (socket) => {
    clearTimeout(socket[HEAD_TIMER]);
    if (socket.destroyed) return;
    socket[HEAD_TIMER] = setTimeout(() => socket.destroy(), headTimeoutMs);
    socket[HEAD_TIMER].unref();
  };
  server.on("connection", (socket) => {
    const address = socket.remoteAddress;
    if (!unlimited(address)) {
      const key = connectionKey(address);
      const held = perAddress.get(key) ?? 0;
      if (held >= maxPerAddress) {
        socket.destroy();
        return;
      }
      perAddress.set(key, held + 1);
      socket.once("close", () => {
        const left = (perAddress.get(key) ?? 1) - 1;
        if (left > 0) perAddress.set(key, left);
        else perAddress.delete(key);
      });
    }
    socket[IN_FLIGHT] = 0;
    arm(socket);
    socket.once("close", () => clearTimeout(socket[HEAD_TIMER]));
  });
  // A request that asks to be told to go on (`Expect: 100-continue`) is announced as
  // "checkContinue" instead, when the server takes those itself.
  const started = (req, res) => {
    const socket = req.socket;
    socket[IN_FLIGHT] = (socket[IN_FLIGHT] ?? 0) + 1;
    clearTimeout(socket[HEAD_TIMER]);
    // Ended or broken off: the next request on this connection has its own time for its head.
    res.once("close", () => {
      socket[IN_FLIGHT] -= 1;
      if (socket[IN_FLIGHT] === 0) arm(socket);
    });
  };
  server.on("request", started);
  server.on("checkContinue", started);
  server.on("upgrade", (req) => clearTimeout(req.socket[HEAD_TIMER]));
}
