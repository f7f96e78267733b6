import type { IncomingMessage } from "node:http";
import { ProxyRefusal } from "./errors";

/**
 * Reads the request body to classify it, refusing (413) before buffering more than `limit`
 * bytes: a declared Content-Length over the limit is refused without reading at all.
 */
export async function readBody(req: IncomingMessage, limit: number, timeoutMs: number): Promise<Buffer | null> {
  const declared = req.headers["content-length"];
  // No Content-Length (or 0) and no Transfer-Encoding: the request has no body by HTTP framing
  // (RFC 9112, 6.3), and Node's parser reads any bytes after it as the next request. Nothing to
  // wait for, so no timer and no listeners (most agent requests are GETs).
  if ((declared === undefined || declared === "0") && req.headers["transfer-encoding"] === undefined) return null;
  if (declared !== undefined && Number(declared) > limit) {
    throw new ProxyRefusal("body_too_large", "body_too_large", `request body of ${declared} bytes exceeds the ${limit}-byte limit`);
  }
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
    const cleanup = () => {
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
