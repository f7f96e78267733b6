import type { IncomingMessage } from "node:http";
import { ProxyRefusal } from "./errors";

/** Bodies the parser failed on (bad chunking, a slow client), and the readers waiting for them. */
const failed = new WeakMap<IncomingMessage, ProxyRefusal>();
const waiting = new WeakMap<IncomingMessage, (refusal: ProxyRefusal) => void>();

/**
 * The parser failed on this request's body (the listener's clientError): whoever reads the body
 * (now, or once the client is authenticated) gets `refusal`, so the request is refused once, by
 * its own handler, as its task's. The connection stays open until that refusal is sent.
 */
export function failBody(req: IncomingMessage, refusal: ProxyRefusal): void {
  failed.set(req, refusal);
  waiting.get(req)?.(refusal);
}

/**
 * Reads the request body to classify it, refusing (413) before buffering more than `limit`
 * bytes: a declared Content-Length over the limit is refused without reading at all.
 */
export async function readBody(req: IncomingMessage, limit: number, timeoutMs: number, invite?: () => void): Promise<Buffer | null> {
  const declared = req.headers["content-length"];
  // No Content-Length (or 0) and no Transfer-Encoding: the request has no body by HTTP framing
  // (RFC 9112, 6.3), and Node's parser reads any bytes after it as the next request. Nothing to
  // wait for, so no timer and no listeners (most agent requests are GETs).
  if ((declared === undefined || declared === "0") && req.headers["transfer-encoding"] === undefined) return null;
  const failure = failed.get(req);
  if (failure) throw failure;
  if (declared !== undefined && Number(declared) > limit) {
    throw new ProxyRefusal("body_too_large", "body_too_large", `request body of ${declared} bytes exceeds the ${limit}-byte limit`);
  }
  // `Expect: 100-continue`: the client is invited only now that its body will be read, never for
  // a body refused by its declared length (above) or that it does not have, and never over
  // HTTP/1.0, whose clients do not know interim answers (RFC 9110 §10.1.1: the expectation is
  // ignored). It used to be sent before these checks: "100 Continue" then "413".
  if (invite && /^100-continue$/i.test(String(req.headers.expect ?? "")) && (req.httpVersionMajor > 1 || req.httpVersionMinor >= 1)) invite();
  const chunks: Buffer[] = [];
  let size = 0;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new ProxyRefusal("client_timeout", "client_body_timeout", "the request body did not arrive in time"));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        reject(new ProxyRefusal("body_too_large", "body_too_large", `request body exceeds the ${limit}-byte limit`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve();
    };
    const onError = (error: Error) => {
      cleanup();
      reject(new ProxyRefusal("malformed", "body_error", `the request body could not be read: ${error.message}`));
    };
    waiting.set(req, (refusal) => {
      cleanup();
      reject(refusal);
    });
    const cleanup = () => {
      waiting.delete(req);
      clearTimeout(timer);
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
  });
  return size === 0 ? null : Buffer.concat(chunks, size);
}

/** RFC 9110's tchar: the bytes a method token is made of. */
const TCHAR = (() => {
  const table = new Uint8Array(256);
  for (const c of "!#$%&'*+-.^_`|~") table[c.charCodeAt(0)] = 1;
  for (let b = 0x30; b <= 0x39; b++) table[b] = 1;
  for (let b = 0x41; b <= 0x5a; b++) table[b] = 1;
  for (let b = 0x61; b <= 0x7a; b++) table[b] = 1;
  return table;
})();

/**
 * The request line a body begins with, if it begins with one (`METHOD target HTTP/x`, after any
 * run of control bytes and spaces, which servers skip before a request line: RFC 9112 §2.2), or
 * null. An upstream that does not read a request's body, as its framing says it should, takes the
 * body's bytes for the next request on the connection (a CL.0 desync): a body that is itself a
 * request would run there, never judged, and a partial one would take the head of the next
 * request on that pooled connection, injected credential included. No API's JSON, form, SQL or
 * GraphQL body starts with a request line, so such a body is refused whatever the method.
 * Linear: one pass over the leading bytes and the first line, at most `LINE_LIMIT` bytes of it.
 */
export function leadingRequestLine(body: Buffer): string | null {
  const LINE_LIMIT = 8192;
  const n = body.length;
  let i = 0;
  while (i < n && body[i]! <= 0x20) i++;
  const start = i;
  const end = Math.min(n, start + LINE_LIMIT);
  // The method: one or more tchars.
  while (i < end && TCHAR[body[i]!] === 1) i++;
  if (i === start || i >= end || (body[i] !== 0x20 && body[i] !== 0x09)) return null;
  while (i < end && (body[i] === 0x20 || body[i] === 0x09)) i++;
  // The target: anything up to the next space or line break.
  const target = i;
  while (i < end && body[i]! > 0x20) i++;
  if (i === target) return null;
  // A first line longer than the limit: a request line whose end lies beyond it (a long query
  // string) is still one; no API body begins with a token, a space and 8 KiB without a break.
  if (i >= end && end < n) return body.toString("latin1", start, start + 200);
  const targetEnd = i;
  if (i < end && body[i] !== 0x20 && body[i] !== 0x09) return null;
  while (i < end && (body[i] === 0x20 || body[i] === 0x09)) i++;
  if (i >= end && end < n) return body.toString("latin1", start, start + 200);
  // The body ends inside its first line, after a method and a target (`DELETE /volumes/x?a=`):
  // the next request on the connection completes it with its own head (`GET /y HTTP/1.1`, its
  // headers and injected credential), which a server lenient about spaces in the target runs
  // as that request. Only a method in capitals and a target in origin, absolute or asterisk form
  // are taken as one (a one-line text body such as `Fix the build` is not).
  if (i >= n) return partialRequestLine(body, start, target, targetEnd) ? body.toString("latin1", start, Math.min(n, start + 200)) : null;
  // The version: "HTTP/" in any case (lenient servers fold it).
  if (i + 5 > n) return null;
  if ((body[i]! | 0x20) !== 0x68 || (body[i + 1]! | 0x20) !== 0x74 || (body[i + 2]! | 0x20) !== 0x74 || (body[i + 3]! | 0x20) !== 0x70 || body[i + 4] !== 0x2f) return null;
  let stop = i + 5;
  while (stop < end && body[stop] !== 0x0d && body[stop] !== 0x0a) stop++;
  return body.toString("latin1", start, Math.min(stop, start + 200));
}

/** `METHOD target` with the method in capitals and the target `/…`, `*` or `scheme://…`. */
function partialRequestLine(body: Buffer, start: number, target: number, targetEnd: number): boolean {
  for (let k = start; k < target; k++) {
    const b = body[k]!;
    if (b === 0x20 || b === 0x09) break;
    if (!((b >= 0x41 && b <= 0x5a) || b === 0x2d || b === 0x5f)) return false;
  }
  const first = body[target];
  if (first === 0x2f || (first === 0x2a && targetEnd === target + 1)) return true;
  return /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(body.toString("latin1", target, Math.min(targetEnd, target + 64)));
}
