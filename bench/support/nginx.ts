/**
 * Path G: nginx as a reverse proxy for the same absolute-form requests (nginx accepts an absolute
 * URI in the request line), with upstream keep-alive, the proxy's own header removed and one
 * header set. One worker process, pinned like the other proxies. Skipped when nginx is missing.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { start, tempFolder, which, type Spawned } from "./children";
import { freePort, waitForPort } from "./ports";
import { childPids } from "./stats";

export interface Nginx extends Spawned {
  port: number;
  version: string;
  workerPids(): number[];
}

export function nginxConfig(o: { dir: string; port: number; upstreamPort: number; secret: string }): string {
  const p = (name: string) => path.join(o.dir, name);
  return `worker_processes 1;
pid ${p("nginx.pid")};
error_log ${p("error.log")} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${p("tmp/body")};
  proxy_temp_path ${p("tmp/proxy")};
  fastcgi_temp_path ${p("tmp/fastcgi")};
  uwsgi_temp_path ${p("tmp/uwsgi")};
  scgi_temp_path ${p("tmp/scgi")};
  upstream bench_upstream {
    server 127.0.0.1:${o.upstreamPort};
    keepalive 64;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
  }
  server {
    listen 127.0.0.1:${o.port} reuseport;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    location / {
      proxy_pass http://bench_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header Proxy-Authorization "";
      proxy_set_header Authorization "Bearer ${o.secret}";
    }
  }
}
`;
}

/** Starts nginx, or says why it could not. */
export async function startNginx(o: { upstreamPort: number; secret: string; cpus: string }): Promise<Nginx | { skipped: string }> {
  const binary = which("nginx");
  if (!binary) return { skipped: "nginx is not installed (apt-get install nginx-light); path G skipped" };
  const dir = tempFolder("bulkhead-bench-nginx-");
  mkdirSync(path.join(dir, "tmp"), { recursive: true });
  const port = await freePort();
  const conf = path.join(dir, "nginx.conf");
  writeFileSync(conf, nginxConfig({ dir, port, upstreamPort: o.upstreamPort, secret: o.secret }));
  const s = start("nginx", binary, ["-p", dir, "-e", path.join(dir, "error.log"), "-c", conf, "-g", "daemon off;"], { cpus: o.cpus });
  if (!(await waitForPort(port, 10_000))) {
    s.proc.kill("SIGKILL");
    return { skipped: `nginx did not start: ${s.logTail(10)}` };
  }
  const version = /nginx\/(\S+)/.exec(spawnSync(binary, ["-v"], { encoding: "utf8" }).stderr)?.[1] ?? "unknown";
  return { ...s, port, version, workerPids: () => childPids(s.pid) };
}
