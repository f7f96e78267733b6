/**
 * Request/response over a child process's IPC channel: the parent sends `{ id, cmd, args }`, the
 * child answers `{ id, ok, result | error }`. A child announces itself once with `{ ready, ... }`.
 * Every bench child also exits when the channel closes, so an orchestrator that dies leaves
 * nothing running.
 */
import type { ChildProcess } from "node:child_process";

export type Handlers = Record<string, (args: never) => unknown>;

interface Reply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

/** Child side: answers commands; `onStop` runs on "stop", SIGTERM, SIGINT or a closed channel. */
export function serve(handlers: Handlers, onStop: () => Promise<void>): void {
  let stopping: Promise<void> | null = null;
  const stop = () => {
    stopping ??= onStop()
      .catch((error: unknown) => console.error(`stop failed: ${String(error)}`))
      .finally(() => process.exit(0));
    return stopping;
  };
  process.on("message", (raw: { id: number; cmd: string; args?: unknown }) => {
    if (raw.cmd === "stop") {
      process.send?.({ id: raw.id, ok: true } satisfies Reply);
      void stop();
      return;
    }
    const handler = handlers[raw.cmd] as ((args: unknown) => unknown) | undefined;
    Promise.resolve()
      .then(() => {
        if (!handler) throw new Error(`unknown command ${raw.cmd}`);
        return handler(raw.args);
      })
      .then(
        (result) => process.send?.({ id: raw.id, ok: true, result } satisfies Reply),
        (error: unknown) => process.send?.({ id: raw.id, ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) } satisfies Reply),
      );
  });
  process.on("disconnect", () => void stop());
  process.on("SIGTERM", () => void stop());
  process.on("SIGINT", () => void stop());
}

export function announce(info: Record<string, unknown>): void {
  process.send?.({ ready: true, ...info });
}

/** Parent side: one outstanding-request table per child. */
export class IpcClient {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  constructor(
    readonly name: string,
    private readonly proc: ChildProcess,
  ) {
    proc.on("message", (m: Reply) => {
      const p = typeof m?.id === "number" ? this.pending.get(m.id) : undefined;
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(`${name}: ${m.error ?? "failed"}`));
    });
    proc.on("exit", (code, signal) => {
      for (const p of this.pending.values()) p.reject(new Error(`${name} exited (${code ?? signal}) with a request pending`));
      this.pending.clear();
    });
  }

  /** Sends a command; rejects after `timeoutMs` so no step of a run can hang. */
  call<T>(cmd: string, args?: unknown, timeoutMs = 120_000): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: ${cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      if (!this.proc.connected) {
        this.pending.delete(id);
        clearTimeout(timer);
        reject(new Error(`${this.name} is not running`));
        return;
      }
      this.proc.send({ id, cmd, args });
    });
  }
}
