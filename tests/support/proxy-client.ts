import http from "node:http";

export interface ProxyResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: Record<string, unknown> | null;
}

/**
 * One request through the explicit proxy in absolute form, as a plain HTTP client would send
 * it (a fresh connection, no keep-alive), with the task token in Proxy-Authorization.
 */
export function viaProxy(
  proxyPort: number,
  url: string,
  options: { token?: string | null; proxyAuthorization?: string; method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<ProxyResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.proxyAuthorization) headers["proxy-authorization"] = options.proxyAuthorization;
    else if (options.token) headers["proxy-authorization"] = `Bearer ${options.token}`;
    const u = new URL(url);
    headers.host ??= u.host;
    const req = http.request({ host: "127.0.0.1", port: proxyPort, method: options.method ?? (options.body ? "POST" : "GET"), path: url, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json: Record<string, unknown> | null = null;
        try {
          json = JSON.parse(text) as Record<string, unknown>;
        } catch {
          json = null;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on("error", reject);
    req.end(options.body);
  });
}
