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
