/**
 * The HTTPS semantic peer: mitmdump (mitmproxy) intercepting TLS with its own generated CA (in a
 * temporary confdir), verifying the upstream against the bench's test CA, quiet (no flow output).
 * Clients CONNECT to 127.0.0.1:<port> with SNI api.github.com, because mitmproxy would resolve a
 * CONNECT name with the system resolver and the bench must stay on loopback.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { start, tempFolder, which, type Spawned } from "./children";
import { freePort, waitForPort } from "./ports";

export interface Mitm extends Spawned {
  port: number;
  caPem: string;
  version: string;
}

export async function startMitmdump(o: { upstreamCaFile: string; cpus: string }): Promise<Mitm | { skipped: string }> {
  const binary = which("mitmdump");
  if (!binary) return { skipped: "mitmdump is not installed (apt-get install mitmproxy); the mitmproxy comparison is skipped" };
  const confdir = tempFolder("bulkhead-bench-mitm-");
  const port = await freePort();
  const s = start(
    "mitmdump",
    binary,
    [
      "--listen-host", "127.0.0.1",
      "--listen-port", String(port),
      "--set", `confdir=${confdir}`,
      "--set", `ssl_verify_upstream_trusted_ca=${o.upstreamCaFile}`,
      "--set", "connection_strategy=lazy",
      "--set", "termlog_verbosity=error",
      "--set", "flow_detail=0",
      "-q",
    ],
    { cpus: o.cpus, env: { HOME: confdir } },
  );
  const caFile = path.join(confdir, "mitmproxy-ca-cert.pem");
  if (!(await waitForPort(port, 30_000)) || !existsSync(caFile)) {
    s.proc.kill("SIGKILL");
    return { skipped: `mitmdump did not start: ${s.logTail(10)}` };
  }
  const version = /Mitmproxy:\s*(\S+)/.exec(spawnSync(binary, ["--version"], { encoding: "utf8" }).stdout)?.[1] ?? "unknown";
  return { ...s, port, caPem: readFileSync(caFile, "utf8"), version };
}
