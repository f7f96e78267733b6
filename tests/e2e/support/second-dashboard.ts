import { fork, type ChildProcess } from "node:child_process";
import path from "node:path";
import { DatabaseLink } from "../../support/database-link";
import { freePort } from "../../support/free-port";

export interface SecondDashboard {
  base: string;
  /** Everything it wrote to standard output and error so far. */
  logs(): string;
  stop(): Promise<void>;
}

/**
 * A second production dashboard in the suite's own environment (E2E_DASHBOARD_ENV), on a free
 * port, with `env` on top, its output kept for the test to read. Resolves once it is serving.
 */
export async function startSecondDashboard(env: Record<string, string> = {}): Promise<SecondDashboard> {
  const suite = JSON.parse(process.env.E2E_DASHBOARD_ENV!) as Record<string, string>;
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const app: ChildProcess = fork(path.resolve("scripts/app-server.mjs"), [], {
    env: { ...(suite as NodeJS.ProcessEnv), BULKHEAD_APP_HOST: "127.0.0.1", BULKHEAD_APP_PORT: String(port), BULKHEAD_PUBLIC_URL: base, ...env },
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  let logs = "";
  app.stdout!.on("data", (c: Buffer) => (logs += c.toString()));
  app.stderr!.on("data", (c: Buffer) => (logs += c.toString()));
  const stop = async () => {
    app.kill("SIGTERM");
    await new Promise((r) => (app.exitCode === null && app.signalCode === null ? app.once("exit", r) : r(null)));
  };
  try {
    await new Promise<void>((resolve, reject) => {
      app.on("message", (m: { type?: string }) => m?.type === "ready" && resolve());
      app.once("exit", (code) => reject(new Error(`the second dashboard exited (code ${code}): ${logs}`)));
    });
  } catch (error) {
    await stop();
    throw error;
  }
  return { base, logs: () => logs, stop };
}

/**
 * A second dashboard whose PostgreSQL is reached through a link the test can cut (`link.refuse()`):
 * the database going away while people are signed in. `stop` ends both.
 */
export async function startDashboardBehindLink(): Promise<{ dashboard: SecondDashboard; link: DatabaseLink; stop(): Promise<void> }> {
  const env = JSON.parse(process.env.E2E_DASHBOARD_ENV!) as Record<string, string>;
  const target = new URL(env.BULKHEAD_DASHBOARD_DATABASE_URL!);
  const link = await new DatabaseLink({ host: target.hostname, port: Number(target.port) }).start();
  const dashboard = await startSecondDashboard({ BULKHEAD_DASHBOARD_DATABASE_URL: link.urlFor(env.BULKHEAD_DASHBOARD_DATABASE_URL!) }).catch(async (error: unknown) => {
    await link.stop();
    throw error;
  });
  return {
    dashboard,
    link,
    async stop() {
      await dashboard.stop();
      await link.stop();
    },
  };
}
