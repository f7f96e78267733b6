/**
 * The largest JSON body a route handler reads: above every field's own limit (a policy or a
 * service descriptor is at most 200,000 characters), so that only a body nobody could mean is
 * refused, before it is held in memory whole. The dashboard's server refuses a larger one before
 * Next.js copies it (scripts/request-guard.mjs, whose own copy of this number a unit test checks).
 */
export const MAX_JSON_BODY_BYTES = 4 * 1024 * 1024;

/**
 * A request's body, read only up to `max` bytes: refused by its Content-Length without reading
 * anything, else as it arrives (the rest is cancelled). Null when it is larger. Shared by the route
 * handlers (lib/http/route.ts) and the proxy's server action check (lib/http/action-request.ts).
 */
export async function readBodyBytes(request: Request, max: number): Promise<Uint8Array<ArrayBuffer> | null> {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > max) return null;
  if (!request.body) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => undefined);
      return null;
    }
    chunks.push(value);
  }
  const body = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    body.set(chunk, at);
    at += chunk.byteLength;
  }
  return body;
}
