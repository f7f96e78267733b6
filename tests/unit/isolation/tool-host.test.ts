/**
 * The worker's ToolHost: system tools run by one helper process, so that a periodic `nft` read
 * never forks the worker (proxy-worker/isolation/tool-host.ts). Real processes throughout.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { IsolationError, run } from "@/proxy-worker/isolation/exec";
import { HELPER_GRACE_MS, ToolHost } from "@/proxy-worker/isolation/tool-host";

const hosts: ToolHost[] = [];
function host(tools: string[]): ToolHost {
  const h = new ToolHost(tools);
  hosts.push(h);
  return h;
}
afterEach(() => {
  for (const h of hosts.splice(0)) h.close();
});

/** The pids of `pid`'s children (every thread's). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const text = readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim();
    if (text) out.push(...text.split(/\s+/).map(Number));
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Runs `source` (TypeScript importing the ToolHost as `ToolHost`) in a process of its own. */
function spawnWithToolHost(source: string) {
  const dir = mkdtempSync(path.join(tmpdir(), "bh-toolhost-"));
  scriptDirs.push(dir);
  const script = path.join(dir, "script.ts");
  writeFileSync(script, `import { ToolHost } from ${JSON.stringify(path.resolve("proxy-worker/isolation/tool-host.ts"))};\n${source}`);
  return spawn(process.execPath, ["--import", "tsx", script], { cwd: process.cwd(), stdio: ["ignore", "pipe", "inherit"] });
}
const scriptDirs: string[] = [];
afterEach(() => {
  for (const dir of scriptDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function waitFor(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.skipIf(process.platform !== "linux")("ToolHost", () => {
  it("runs an allowed tool with its arguments and input, and answers concurrent calls each with its own output", async () => {
    const h = host(["sh", "cat"]);
    expect(await h.run("cat", [], { input: "line one\nline two\n" })).toEqual({ stdout: "line one\nline two\n", stderr: "" });
    const [slow, quick] = await Promise.all([h.run("sh", ["-c", "sleep 0.3; echo slow"]), h.run("sh", ["-c", 'printf "%s|" "$@"', "sh", "a b", "'c'", "$(id)"])]);
    expect(slow.stdout).toBe("slow\n");
    // Arguments are a vector, never a shell line: quotes and $( ) arrive as they were given.
    expect(quick.stdout).toBe("a b|'c'|$(id)|");
    expect(h.started).toBe(1);
  });

  it("forks the helper, not the calling process, for every tool it runs", async () => {
    const h = host(["sleep"]);
    h.prepare();
    const helper = h.pid!;
    expect(helper).toBeGreaterThan(0);
    const running = h.run("sleep", ["0.5"]);
    // Nothing unhandled if an expectation below fails and afterEach closes the host meanwhile.
    running.catch(() => undefined);
    // The helper's child shows `sleep` once it has exec'd (between fork and exec, and while it
    // execs, /proc may show the helper's command or nothing): wait for that, not for the fork.
    const command = (pid: number) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0];
      } catch {
        return undefined;
      }
    };
    await waitFor(() => childrenOf(helper).some((pid) => command(pid) === "sleep"));
    const tool = childrenOf(helper).find((pid) => command(pid) === "sleep")!;
    expect(command(tool)).toBe("sleep");
    // This process's only child from the host is the helper (vitest's own workers aside).
    expect(childrenOf(process.pid)).toContain(helper);
    expect(childrenOf(process.pid)).not.toContain(tool);
    await running;
    await h.run("sleep", ["0"]);
    expect(h.pid).toBe(helper);
    expect(h.started).toBe(1);
  });

  it("gives the tool the fixed tool environment, none of the caller's variables", async () => {
    process.env.BULKHEAD_TEST_SECRET_FOR_TOOLS = "do-not-leak";
    try {
      const h = host(["env"]);
      const { stdout } = await h.run("env", []);
      const vars = stdout.trim().split("\n").sort();
      expect(vars).toEqual(["LC_ALL=C", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"]);
    } finally {
      delete process.env.BULKHEAD_TEST_SECRET_FOR_TOOLS;
    }
  });

  it("runs nothing it was not started for, and starts no helper for it", async () => {
    const h = host(["cat"]);
    await expect(h.run("sh", ["-c", "touch /tmp/should-not-exist"])).rejects.toThrow(/not a tool this helper runs/);
    expect(h.started).toBe(0);
  });

  it("turns a failing tool into an IsolationError with its first line of stderr, and a missing one into tool_missing", async () => {
    const h = host(["sh", "bulkhead-no-such-tool"]);
    const failed = await h.run("sh", ["-c", "echo; echo 'first problem' >&2; echo second >&2; exit 3"]).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(IsolationError);
    expect((failed as IsolationError).code).toBe("command_failed");
    expect((failed as Error).message).toBe("sh -c echo; echo 'first problem' >&2; echo second >&2; exit 3: first problem");
    const denied = await h.run("sh", ["-c", "echo 'Error: Operation not permitted' >&2; exit 1"]).catch((e: unknown) => e);
    expect((denied as IsolationError).code).toBe("not_privileged");
    const missing = await h.run("bulkhead-no-such-tool", []).catch((e: unknown) => e);
    expect((missing as IsolationError).code).toBe("tool_missing");
    // The helper is still there for the next call.
    expect((await h.run("sh", ["-c", "echo ok"])).stdout).toBe("ok\n");
    expect(h.started).toBe(1);
  });

  it("fails with the same errors as a tool spawned directly (exec.ts's run)", async () => {
    const h = host(["sh", "sleep", "bulkhead-no-such-tool"]);
    const cases: Array<[string, string[], { timeoutMs?: number }]> = [
      ["sh", ["-c", "echo 'first problem' >&2; exit 3"], {}],
      ["sh", ["-c", "exit 4"], {}],
      ["sh", ["-c", "echo 'nft: Operation not permitted' >&2; exit 1"], {}],
      ["sleep", ["30"], { timeoutMs: 100 }],
      ["bulkhead-no-such-tool", [], {}],
    ];
    for (const [file, args, options] of cases) {
      const direct = (await run(file, args, options).catch((e: unknown) => e)) as IsolationError;
      const hosted = (await h.run(file, args, options).catch((e: unknown) => e)) as IsolationError;
      expect(direct).toBeInstanceOf(IsolationError);
      expect({ message: hosted.message, code: hosted.code }).toEqual({ message: direct.message, code: direct.code });
    }
  });

  it("kills a tool that runs past its timeout", async () => {
    const h = host(["sleep"]);
    const started = Date.now();
    await expect(h.run("sleep", ["30"], { timeoutMs: 200 })).rejects.toThrow(/killed \(SIGKILL\)/);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it("fails the calls waiting on a helper that dies, and starts a new one for the next call", async () => {
    const h = host(["sleep", "echo"]);
    h.prepare();
    const first = h.pid!;
    const waiting = h.run("sleep", ["30"]).catch((e: unknown) => e);
    await waitFor(() => childrenOf(first).length > 0);
    const orphan = childrenOf(first)[0]!;
    process.kill(first, "SIGKILL");
    const error = await waiting;
    expect(error).toBeInstanceOf(IsolationError);
    expect((error as Error).message).toMatch(/tool helper exited \(SIGKILL\)/);
    expect((await h.run("echo", ["again"])).stdout).toBe("again\n");
    expect(h.started).toBe(2);
    expect(h.pid).not.toBe(first);
    // A helper killed outright cannot end its tools (one that exits does: the next test but one).
    process.kill(orphan, "SIGKILL");
  });

  it("kills a helper that does not answer within a call's timeout and the grace, and starts a new one", async () => {
    const h = host(["echo"]);
    h.prepare();
    const stuck = h.pid!;
    process.kill(stuck, "SIGSTOP"); // alive, silent
    const started = Date.now();
    const error = await h.run("echo", ["never"], { timeoutMs: 100 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IsolationError);
    expect((error as Error).message).toBe(`the tool helper did not answer within ${100 + HELPER_GRACE_MS} ms`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(100 + HELPER_GRACE_MS - 50);
    await waitFor(() => !alive(stuck) || readFileSync(`/proc/${stuck}/stat`, "utf8").split(") ")[1]!.startsWith("Z"));
    expect((await h.run("echo", ["again"])).stdout).toBe("again\n");
    expect(h.started).toBe(2);
  });

  it("closes: the helper exits, waiting calls fail, later calls are refused", async () => {
    const h = host(["sleep"]);
    h.prepare();
    const pid = h.pid!;
    const waiting = h.run("sleep", ["30"]).catch((e: unknown) => e);
    h.close();
    expect(await waiting).toBeInstanceOf(IsolationError);
    await waitFor(() => !alive(pid));
    await expect(h.run("sleep", ["0"])).rejects.toThrow(/closed/);
  });

  it("keeps its caller alive while a call waits, and not once it is idle", async () => {
    // Nothing else keeps this process running: it must wait for the answer, print it, and exit.
    const caller = spawnWithToolHost(`const h = new ToolHost(["sh"]);
h.run("sh", ["-c", "sleep 0.3; echo answered"]).then((r) => process.stdout.write(r.stdout));
`);
    let out = "";
    caller.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        caller.kill("SIGKILL");
        resolve(-1); // still running: the idle helper held it open
      }, 10_000);
      caller.once("exit", (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(out).toBe("answered\n");
    expect(code).toBe(0);
  });

  it("never outlives the process that started it, even one killed with SIGKILL, nor do its tools", async () => {
    const owner = spawnWithToolHost(`const h = new ToolHost(["sleep"]);
h.prepare();
void h.run("sleep", ["60"]).catch(() => undefined);
console.log(String(h.pid));
setInterval(() => undefined, 1000);
`);
    const helper = await new Promise<number>((resolve, reject) => {
      owner.stdout.once("data", (d: Buffer) => resolve(Number(d.toString().trim())));
      owner.once("exit", () => reject(new Error("owner exited early")));
    });
    expect(alive(helper)).toBe(true);
    await waitFor(() => childrenOf(helper).length > 0);
    const tool = childrenOf(helper)[0]!;
    owner.kill("SIGKILL");
    // Gone, or a zombie waiting for a parent that no longer exists to reap it.
    const gone = (pid: number) => !alive(pid) || readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.startsWith("Z");
    await waitFor(() => gone(helper));
    await waitFor(() => gone(tool));
  });
});
