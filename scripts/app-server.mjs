// The dashboard's HTTP server, started by `bulkhead start`. It runs Next's production server and
// exits when its launcher goes away (IPC disconnect), so a killed launcher leaves no orphan.
import http from "node:http";
import process from "node:process";
import next from "next";

const host = process.env.BULKHEAD_APP_HOST ?? "127.0.0.1";
const port = Number(process.env.BULKHEAD_APP_PORT ?? 3000);
const app = next({ dev: false, dir: process.cwd(), hostname: host, port });
await app.prepare();
const handle = app.getRequestHandler();
const server = http.createServer((req, res) => handle(req, res));
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
process.on("disconnect", stop);
