import http from "node:http";
import type { AddressInfo } from "node:net";

/** A SIEM's HTTP intake that can be taken down (503, then refusing connections) and brought back. */
export async function siemReceiver() {
  const seqs: string[] = [];
  let mode: "up" | "503" = "up";
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      if (mode === "503") return void res.writeHead(503).end();
      for (const line of body.split("\n").filter(Boolean)) seqs.push(String((JSON.parse(line) as { metadata: { uid: unknown } }).metadata.uid));
      res.writeHead(202).end();
    });
  });
  const listen = (port = 0) => new Promise<number>((resolve) => server.listen(port, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));
  const port = await listen();
  const close = () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); });
  return {
    seqs,
    port,
    url: `http://127.0.0.1:${port}/ingest`,
    set: (m: "up" | "503") => void (mode = m),
    down: close,
    up: () => listen(port),
    close,
  };
}
