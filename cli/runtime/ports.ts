import net from "node:net";

/** Resolves when host:port can be bound; rejects with a message naming the variable otherwise. */
export async function assertPortFree(host: string, port: number, variable: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = net.createServer();
    server.once("error", (error: NodeJS.ErrnoException) => {
      reject(
        new Error(
          error.code === "EADDRINUSE"
            ? `Port ${port} on ${host} is already in use (${variable}). Stop what uses it, or set ${variable} to another port.`
            : `Cannot listen on ${host}:${port} (${variable}): ${error.message}`,
        ),
      );
    });
    server.listen(port, host, () => server.close(() => resolve()));
  });
}
