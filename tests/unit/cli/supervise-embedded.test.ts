import { describe, expect, it } from "vitest";
import type { EmbeddedDatabase } from "@/lib/db/embedded";
import { superviseEmbedded } from "@/cli/runtime/database";

/** A stand-in server: `die(how)` is what a killed PostgreSQL looks like to the launcher. */
class FakeServer implements EmbeddedDatabase {
  static made = 0;
  readonly url: string;
  readonly port = 1;
  stopped = false;
  private listener: ((how: string) => void) | null = null;
  constructor() {
    this.url = `postgresql://server-${++FakeServer.made}`;
  }
  async stop() {
    this.stopped = true;
  }
  onUnexpectedExit(listener: (how: string) => void) {
    this.listener = listener;
  }
  die(how = "SIGKILL") {
    const l = this.listener;
    this.listener = null;
    l?.(how);
  }
}

const until = async (check: () => boolean, ms = 2_000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe("the launcher's embedded server", () => {
  it("is started again when it dies, and says so", async () => {
    const lines: string[] = [];
    const gaveUp: string[] = [];
    const first = new FakeServer();
    const started: FakeServer[] = [];
    const s = superviseEmbedded(first, async () => started[started.push(new FakeServer()) - 1]!, { say: (l) => lines.push(l), onGiveUp: (r) => gaveUp.push(r), backoffMs: [5, 5, 5] });
    first.die("SIGKILL");
    await until(() => s.current() !== first);
    expect(s.current()).toBe(started[0]);
    expect(lines).toEqual([expect.stringContaining("exited unexpectedly (SIGKILL); restarting it"), "The embedded PostgreSQL is running again."]);
    // The new one is watched too.
    started[0]!.die("code 1");
    await until(() => started.length === 2 && s.current() === started[1]);
    expect(gaveUp).toEqual([]);
    await s.stop();
  });

  it("retries a start that fails, then gives up", async () => {
    const lines: string[] = [];
    const gaveUp: string[] = [];
    const first = new FakeServer();
    let tries = 0;
    const s = superviseEmbedded(first, async () => {
      tries++;
      throw new Error("pre-existing shared memory block is still in use\nmore");
    }, { say: (l) => lines.push(l), onGiveUp: (r) => gaveUp.push(r), backoffMs: [5, 5, 5] });
    first.die("SIGSEGV");
    await until(() => gaveUp.length === 1);
    expect(tries).toBe(3);
    expect(gaveUp).toEqual(["SIGSEGV"]);
    expect(lines.at(-2)).toBe("The embedded PostgreSQL did not start yet (pre-existing shared memory block is still in use); trying again in 0.005 s.");
    expect(lines.at(-1)).toBe("The embedded PostgreSQL could not be started again (pre-existing shared memory block is still in use); stopping everything.");
    await s.stop();
  });

  it("gives up on a server that keeps dying", async () => {
    const gaveUp: string[] = [];
    const lines: string[] = [];
    const first = new FakeServer();
    const s = superviseEmbedded(first, async () => new FakeServer(), { say: (l) => lines.push(l), onGiveUp: (r) => gaveUp.push(r), backoffMs: [1] });
    let server = first;
    for (let i = 0; i < 5; i++) {
      server.die();
      await until(() => s.current() !== server);
      server = s.current() as FakeServer;
    }
    expect(gaveUp).toEqual([]);
    server.die("SIGKILL");
    expect(gaveUp).toEqual(["SIGKILL"]);
    expect(lines.at(-1)).toContain("6 times in 10 minutes; not restarting it again");
    await new Promise((r) => setTimeout(r, 20));
    expect(s.current()).toBe(server);
    await s.stop();
  });

  it("a server shut down on purpose (exit code 0) is not started again: everything stops", async () => {
    const lines: string[] = [];
    const gaveUp: string[] = [];
    const first = new FakeServer();
    let starts = 0;
    const s = superviseEmbedded(first, async () => (starts++, new FakeServer()), { say: (l) => lines.push(l), onGiveUp: (r) => gaveUp.push(r), backoffMs: [1] });
    first.die("code 0");
    await new Promise((r) => setTimeout(r, 20));
    expect(starts).toBe(0);
    expect(gaveUp).toEqual(["code 0"]);
    expect(lines).toEqual(["The embedded PostgreSQL was shut down from outside Bulkhead; stopping everything."]);
    await s.stop();
  });

  it("once the launcher is closing, the server's exit is expected (Ctrl-C signals it too)", async () => {
    const lines: string[] = [];
    const first = new FakeServer();
    let starts = 0;
    const s = superviseEmbedded(first, async () => (starts++, new FakeServer()), { say: (l) => lines.push(l), onGiveUp: () => lines.push("gave up"), backoffMs: [1] });
    s.closing();
    first.die("SIGINT");
    await new Promise((r) => setTimeout(r, 20));
    expect(starts).toBe(0);
    expect(lines).toEqual([]);
    await s.stop();
  });

  it("stopping wins over a restart: none is scheduled after, and one that was starting is stopped", async () => {
    const first = new FakeServer();
    let release!: () => void;
    const pending = new FakeServer();
    const s = superviseEmbedded(first, () => new Promise<FakeServer>((resolve) => (release = () => resolve(pending))), { say: () => undefined, onGiveUp: () => undefined, backoffMs: [1] });
    first.die();
    await until(() => release !== undefined);
    const stopping = s.stop();
    release();
    await stopping;
    expect(pending.stopped).toBe(true);
    expect(s.current()).toBe(first);

    const second = new FakeServer();
    let starts = 0;
    const t = superviseEmbedded(second, async () => (starts++, new FakeServer()), { say: () => undefined, onGiveUp: () => undefined, backoffMs: [1] });
    await t.stop();
    second.die();
    await new Promise((r) => setTimeout(r, 20));
    expect(starts).toBe(0);
  });
});
