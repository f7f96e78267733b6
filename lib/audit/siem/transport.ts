/**
 * Where the SIEM shipper sends OCSF events: an HTTP endpoint (one POST of JSON Lines per batch,
 * 2xx = accepted) or syslog over TCP (RFC 5424 messages, octet-counted framing per RFC 6587).
 * A batch is either accepted as a whole or the send throws; the shipper then retries it.
 */
import net from "node:net";

export interface SiemTransport {
  readonly description: string;
  /** `events` are OCSF objects in chain order; `batchId` names the batch for the receiver (idempotency). */
  send(events: Array<Record<string, unknown>>, batchId: string): Promise<void>;
  close(): Promise<void>;
}

export function httpTransport(url: string, options: { timeoutMs?: number; headers?: Record<string, string> } = {}): SiemTransport {
  return {
    description: `HTTP ${new URL(url).origin}`,
    async send(events, batchId) {
      const body = events.map((e) => JSON.stringify(e)).join("\n") + "\n";
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/x-ndjson", "idempotency-key": batchId, ...options.headers },
        body,
        // A redirect is never followed: a 301/302/303 would turn the POST into a GET whose 200 marks
        // the batch accepted though no event arrived anywhere, and a 307/308 would send the whole
        // batch to wherever the answer points (another host, this machine's loopback). The
        // endpoint is the URL the operator configured, or nothing is accepted.
        redirect: "manual",
        signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.status >= 300 && res.status <= 399) {
        throw new Error(`the SIEM endpoint answered ${res.status}, a redirect, which is not followed: set BULKHEAD_SIEM_URL to the address the SIEM takes events at`);
      }
      if (res.status < 200 || res.status > 299) throw new Error(`the SIEM endpoint answered ${res.status}`);
    },
    async close() {},
  };
}

/** RFC 5424: <PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG; facility 13 (log audit), severity from OCSF. */
export function syslogMessage(event: Record<string, unknown>, hostname: string): string {
  const sev = Number(event.severity_id ?? 1);
  const severity = sev >= 4 ? 3 : sev === 3 ? 4 : sev === 2 ? 5 : 6; // high->err, medium->warning, low->notice, else info
  const time = typeof event.time === "number" ? new Date(event.time).toISOString() : new Date().toISOString();
  const meta = (event.metadata ?? {}) as { uid?: unknown };
  const msgid = String(event.class_uid ?? "-");
  return `<${13 * 8 + severity}>1 ${time} ${hostname || "-"} bulkhead - ${msgid} [bulkhead@32473 seq="${String(meta.uid ?? "-")}"] ${JSON.stringify(event)}`;
}

export function syslogTcpTransport(host: string, port: number, options: { hostname?: string; timeoutMs?: number } = {}): SiemTransport {
  let socket: net.Socket | null = null;
  const connect = () =>
    new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ host, port });
      s.setTimeout(options.timeoutMs ?? 10_000, () => s.destroy(new Error("syslog connection timed out")));
      s.once("connect", () => resolve(s));
      s.once("error", reject);
      s.on("close", () => {
        if (socket === s) socket = null;
      });
    });
  return {
    description: `syslog TCP ${host}:${port}`,
    async send(events) {
      socket ??= await connect();
      const s = socket;
      const frames = events.map((e) => {
        const msg = Buffer.from(syslogMessage(e, options.hostname ?? "bulkhead"), "utf8");
        return Buffer.concat([Buffer.from(`${msg.length} `), msg]);
      });
      await new Promise<void>((resolve, reject) => {
        const onError = (error: Error) => reject(error);
        s.once("error", onError);
        s.write(Buffer.concat(frames), (error) => {
          s.off("error", onError);
          if (error) reject(error);
          else resolve();
        });
      }).catch((error: unknown) => {
        s.destroy();
        socket = null;
        throw error;
      });
    },
    async close() {
      socket?.end();
      socket = null;
    },
  };
}
