/**
 * `bulkhead sandbox verify`: from inside a real sandbox, as its unprivileged user, try every
 * escape of the threat model (probe.mjs) and report each as blocked or ESCAPED. Canary targets
 * (servers that answer with a banner) make the result checkable: with the fence intact nothing
 * reaches them; with a rule removed, the probe does and verify fails.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { copyFile, chmod } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { IsolationConfig } from "@/lib/config/isolation";
import type { Db } from "@/lib/db/client";
import type { Actor } from "@/lib/auth/actor";
import { recordAuditEvent } from "@/lib/audit/record";
import { run } from "./exec";
import type { LaunchedSandbox } from "./launcher";
import { sandboxArgv, sandboxHome, trustEnvironment } from "./session";

export interface Canary {
  v4?: string;
  v6?: string;
  ula?: string;
  port?: number;
  bannerPort?: number;
  udpPort?: number;
  resolver?: string;
}

export interface VerifyTargets {
  canary?: Canary;
  /** Bulkhead's own addresses as seen from the sandbox (gateways and the host's addresses). */
  bulkheadAddresses: string[];
  bulkheadPorts: { dashboard?: number; database?: number; health?: number; proxy?: number };
}

export interface VerifyResult {
  escape: string;
  expected: string;
  got: string;
  escaped: boolean;
}

/** The host namespace's own addresses (not loopback), which Bulkhead's ports may listen on. */
export async function hostAddresses(limit = 6): Promise<string[]> {
  const links = JSON.parse((await run("ip", ["-j", "addr", "show"])).stdout || "[]") as Array<{ ifname?: string; addr_info?: Array<{ local?: string; scope?: string }> }>;
  const out: string[] = [];
  for (const link of links) {
    for (const a of link.addr_info ?? []) {
      if (!a.local || a.scope === "host" || a.scope === "link" || a.local.startsWith("127.") || a.local === "::1") continue;
      if (!out.includes(a.local)) out.push(a.local);
    }
  }
  return out.slice(0, limit);
}

/**
 * Waits for the probe to exit and its output to end, at most `timeoutMs`; on timeout kills it
 * (SIGKILL to `unshare`, whose --kill-child takes the sandbox's processes with it) and says so.
 */
function waitBounded(child: ChildProcess, timeoutMs: number): Promise<number | "timeout"> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      resolve("timeout");
    }, timeoutMs);
    child.once("close", (c) => {
      clearTimeout(timer);
      resolve(c ?? 1);
    });
  });
}

export async function runProbe(config: IsolationConfig, sandbox: LaunchedSandbox, targets: VerifyTargets, timeoutMs = config.verifyTimeoutMs): Promise<VerifyResult[]> {
  const source = fileURLToPath(new URL("./probe.mjs", import.meta.url));
  const probe = path.join(sandbox.runDir, "probe.mjs");
  await copyFile(source, probe);
  await chmod(probe, 0o644);
  const koffiPath = createRequire(import.meta.url).resolve("koffi");
  const input = JSON.stringify({ ...targets, koffiPath, interface: sandbox.names.sandboxIf, nonce: sandbox.id.slice(0, 8) });
  const env = { PATH: "/usr/local/bin:/usr/bin:/bin", HOME: sandboxHome(sandbox.names.netns), ...trustEnvironment(sandbox.caFile) } as unknown as NodeJS.ProcessEnv;
  const child = spawn("/bin/sh", sandboxArgv(config, sandbox, [process.execPath, probe, input]), { stdio: ["ignore", "pipe", "pipe"], env, cwd: "/" });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  // Bounded: a probe that hangs (a stuck socket, a sandbox at its limits) fails the self-test, it never holds the launcher.
  const finished = await waitBounded(child, timeoutMs);
  if (finished === "timeout") {
    return [{ escape: "self-test probe", expected: `runs to completion within ${Math.round(timeoutMs / 1000)} s`, got: `did not finish within ${Math.round(timeoutMs / 1000)} s (BULKHEAD_SANDBOX_VERIFY_TIMEOUT_SECONDS); it was killed`, escaped: true }];
  }
  const code = finished;
  const line = stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line) as VerifyResult[];
  } catch {
    return [{ escape: "self-test probe", expected: "runs to completion", got: `failed (exit ${code}): ${stderr.trim().split("\n").pop() ?? ""}`.slice(0, 200), escaped: true }];
  }
}

export function formatTable(results: readonly VerifyResult[]): string {
  const rows = results.map((r) => [r.escape, r.expected, r.got, r.escaped ? "ESCAPED" : "blocked"]);
  const head = ["escape", "expected", "got", "result"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ").trimEnd();
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

export async function auditVerify(db: Db, actor: Actor, sandbox: LaunchedSandbox, results: readonly VerifyResult[]): Promise<void> {
  const escaped = results.filter((r) => r.escaped);
  await recordAuditEvent(db, {
    type: "sandbox.verify",
    actor,
    agentId: sandbox.agentId,
    taskId: sandbox.taskId,
    outcome: escaped.length ? "deny" : "allow",
    reason: escaped.length ? `${escaped.length} escape(s) worked: ${escaped.map((r) => r.escape).join("; ")}`.slice(0, 2000) : `all ${results.length} escapes were blocked`,
    data: { sandboxId: sandbox.id, netns: sandbox.names.netns, results: results.map((r) => ({ ...r })) },
  });
}
