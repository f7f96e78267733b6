import net from "node:net";

/**
 * A TCP relay between a process and its PostgreSQL that a test can break the way networks and
 * servers break: `refuse` (new connections are reset, open ones cut: a server that is down),
 * `hang` (connections are accepted and nothing is answered: a server that stopped responding, a
 * network that drops packets), and `pass` again. Real bytes, real PostgreSQL; only the link fails.
 */
export class DatabaseLink {
  private server: net.Server | null = null;
  private mode: "pass" | "refuse" | "hang" = "pass";
  private readonly open = new Set<net.Socket>();
  port = 0;

  constructor(
    private readonly target: { host: string; port: number },
  ) {}

  async start(): Promise<this> {
    this.server = net.createServer((client) => {
      if (this.mode === "refuse") {
        client.resetAndDestroy();
        return;
      }
      this.open.add(client);
      client.on("close", () => this.open.delete(client));
      client.on("error", () => undefined);
      if (this.mode === "hang") return; // accepted, never answered
      const upstream = net.connect(this.target);
      this.open.add(upstream);
      upstream.on("close", () => {
        this.open.delete(upstream);
        client.destroy();
      });
      upstream.on("error", () => client.destroy());
      client.on("close", () => upstream.destroy());
      // Data flows only while the link passes: in `hang` it is held back, both ways.
      client.on("data", (chunk) => this.mode === "pass" && upstream.write(chunk));
      upstream.on("data", (chunk) => this.mode === "pass" && client.write(chunk));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", () => resolve()));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  /** The URL with its host and port replaced by the link's. */
  urlFor(databaseUrl: string): string {
    const url = new URL(databaseUrl);
    url.hostname = "127.0.0.1";
    url.port = String(this.port);
    return url.toString();
  }

  /** A server that is down: every open connection is cut and new ones are reset. */
  refuse(): void {
    this.mode = "refuse";
    for (const socket of this.open) socket.destroy();
  }

  /** A server that stopped answering: connections stay open, nothing comes back. */
  hang(): void {
    this.mode = "hang";
  }

  /** Back to normal for new connections (connections cut or hung before stay as they are). */
  pass(): void {
    this.mode = "pass";
  }

  async stop(): Promise<void> {
    for (const socket of this.open) socket.destroy();
    await new Promise((resolve) => this.server?.close(resolve) ?? resolve(null));
  }
}
