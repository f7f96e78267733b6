// The escape catalogue of `bulkhead sandbox verify`, run INSIDE a sandbox as its unprivileged
// user. Plain JavaScript with Node's built-ins only (it runs outside the project's loader), plus
// koffi, given by path, to try raw and packet sockets. Prints one JSON array of results:
// { escape, expected, got, escaped }, in the catalogue's order. A result counts as an escape when
// the probe reached something that is not Bulkhead: a canary's banner, an HTTP answer without
// Bulkhead's x-bulkhead-decision header, a DNS answer carrying addresses for a name that must not
// resolve, a UDP or ICMP reply, a socket the sandbox must not be able to open, or a namespace of
// its own it managed to create (a user namespace hands it every capability there). The probes run
// at the same time, each with its own socket or child and its own timer (none blocks the event
// loop, so no timer can fire before the data that arrived in time is read), so the whole
// catalogue takes about as long as its slowest probe.
import dgram from "node:dgram";
import net from "node:net";
import tls from "node:tls";
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";

const input = JSON.parse(process.argv[2] ?? "{}");
const CANARY = "BULKHEAD-CANARY";
const WAIT = input.waitMs ?? 1500;

const bracket = (a) => (a.includes(":") ? `[${a}]` : a);
const nameserver = () => {
  try {
    const line = readFileSync("/etc/resolv.conf", "utf8").split("\n").find((l) => l.startsWith("nameserver "));
    return line ? line.split(/\s+/)[1] : "127.0.0.1";
  } catch {
    return "127.0.0.1";
  }
};

function record(escape, expected, got, escaped) {
  return { escape, expected, got, escaped };
}

/** Connects, optionally sends `payload`, collects what comes back until close or WAIT. */
function talk({ host, port, payload, useTls, servername }) {
  return new Promise((resolve) => {
    let data = Buffer.alloc(0);
    let connected = false;
    const options = { host, port, timeout: WAIT };
    const socket = useTls ? tls.connect({ ...options, servername, rejectUnauthorized: false }) : net.connect(options);
    const done = (state) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ state, connected, data: data.toString("latin1") });
    };
    const timer = setTimeout(() => done(connected ? "timeout" : "connect-timeout"), WAIT * 2);
    socket.on(useTls ? "secureConnect" : "connect", () => {
      connected = true;
      if (payload) socket.write(payload);
    });
    socket.on("data", (c) => {
      data = Buffer.concat([data, c]);
      if (data.length > 65536) done("data");
    });
    socket.on("end", () => done("closed"));
    socket.on("close", () => done("closed"));
    socket.on("error", (e) => done(connected ? `error ${e.code ?? e.message}` : `connect-error ${e.code ?? e.message}`));
  });
}

function judgeHttp(reply) {
  if (reply.data.includes(CANARY)) return { escaped: true, got: "reached the canary" };
  const status = /^HTTP\/1\.[01] (\d{3})[^\r\n]*/.exec(reply.data);
  if (status) {
    if (/\r\nx-bulkhead-decision:/i.test(reply.data)) {
      const code = /"error":"([^"]+)"/.exec(reply.data)?.[1] ?? "";
      return { escaped: false, got: `refused by Bulkhead (${status[1]}${code ? ` ${code}` : ""})` };
    }
    return { escaped: true, got: `answered by something else: ${status[0].slice(0, 60)}` };
  }
  if (reply.data.length > 0) return { escaped: true, got: `unexpected bytes: ${JSON.stringify(reply.data.slice(0, 40))}` };
  return { escaped: false, got: reply.connected ? "closed by Bulkhead" : `no connection (${reply.state})` };
}

async function httpProbe(escape, host, port, path = "/", hostHeader = host) {
  const reply = await talk({ host, port, payload: `GET ${path} HTTP/1.1\r\nHost: ${bracket(hostHeader)}\r\nConnection: close\r\n\r\n` });
  const j = judgeHttp(reply);
  return record(escape, "refused or closed by Bulkhead", j.got, j.escaped);
}

async function silentTcpProbe(escape, host, port) {
  // Say nothing: a canary speaks first; Bulkhead treats silence as raw TCP and refuses it.
  const reply = await talk({ host, port });
  const escaped = reply.data.length > 0;
  return record(escape, "closed by Bulkhead", escaped ? (reply.data.includes(CANARY) ? "reached the canary" : `got ${reply.data.length} bytes`) : reply.connected ? "closed by Bulkhead" : `no connection (${reply.state})`, escaped);
}

function dnsQuery(name, type, id = Math.floor(Math.random() * 65535)) {
  const labels = name.split(".").map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2);
  header.writeUInt16BE(1, 4);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(type, 0);
  tail.writeUInt16BE(1, 2);
  return Buffer.concat([header, ...labels, Buffer.from([0]), tail]);
}

function udpExchange(host, port, payload) {
  return new Promise((resolve) => {
    const socket = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
    const timer = setTimeout(() => {
      socket.close();
      resolve(null);
    }, WAIT);
    socket.on("message", (msg) => {
      clearTimeout(timer);
      socket.close();
      resolve(msg);
    });
    socket.on("error", () => {
      clearTimeout(timer);
      socket.close();
      resolve(null);
    });
    socket.send(payload, port, host);
  });
}

const RCODES = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"];
/** Skips a (possibly compressed) name at `p`; returns the offset after it. */
function skipName(msg, p) {
  while (p < msg.length) {
    const len = msg[p];
    if (len === 0) return p + 1;
    if ((len & 0xc0) === 0xc0) return p + 2;
    p += 1 + len;
  }
  return msg.length;
}

/** The IPv4 addresses of the answer's A records. */
function aRecords(msg) {
  const out = [];
  let p = 12;
  for (let i = 0; i < msg.readUInt16BE(4); i++) p = skipName(msg, p) + 4;
  for (let i = 0; i < msg.readUInt16BE(6) && p < msg.length; i++) {
    p = skipName(msg, p);
    if (p + 10 > msg.length) break;
    const type = msg.readUInt16BE(p);
    const len = msg.readUInt16BE(p + 8);
    if (type === 1 && len === 4 && p + 14 <= msg.length) out.push([...msg.subarray(p + 10, p + 14)].join("."));
    p += 10 + len;
  }
  return out;
}

function dnsSummary(msg) {
  if (!msg || msg.length < 12) return { answers: 0, rcode: "no answer", canary: false, addresses: [] };
  return { answers: msg.readUInt16BE(6), rcode: RCODES[msg.readUInt16BE(2) & 0xf] ?? "?", canary: msg.includes(Buffer.from([198, 51, 100, 77])), addresses: aRecords(msg) };
}

/**
 * Not resolved upstream: no answer, or only the gateway's own address (what the resolver answers,
 * without any lookup, for a name that only a person's approval could reach).
 */
const notResolved = (s) => s.answers === 0 || (s.addresses.length === s.answers && s.addresses.every((a) => a === ns));

async function dnsProbe(escape, server, name, type, expected, ok) {
  const s = dnsSummary(await udpExchange(server, 53, dnsQuery(name, type)));
  const escaped = s.canary || !ok(s);
  return record(escape, expected, s.canary ? "answered by the outside resolver" : `${s.rcode}, ${s.answers} answer(s)`, escaped);
}

async function udpProbe(escape, host, port) {
  const reply = await udpExchange(host, port, Buffer.from(`probe ${CANARY}`));
  return record(escape, "dropped by the fence", reply ? `reply of ${reply.length} bytes` : "no reply", reply !== null);
}

function socketProbes() {
  let koffi;
  try {
    koffi = createRequire(import.meta.url)(input.koffiPath);
  } catch (error) {
    return [record("raw and packet sockets", "refused by the kernel", `could not test (${error.message.slice(0, 60)})`, true)];
  }
  const lib = koffi.load("libc.so.6");
  const socket = lib.func("int socket(int, int, int)");
  const close = lib.func("int close(int)");
  const tryOpen = (escape, domain, type, protocol) => {
    const fd = socket(domain, type, protocol);
    if (fd >= 0) close(fd);
    return record(escape, "refused by the kernel (no CAP_NET_RAW)", fd >= 0 ? "opened" : "refused", fd >= 0);
  };
  return [tryOpen("raw IPv4 socket (ICMP)", 2, 3, 1), tryOpen("raw IPv6 socket", 10, 3, 58), tryOpen("packet socket", 17, 3, 0x0300)];
}

/** One echo request with the system's ping, as a child (never spawnSync: see the header). */
function icmpProbe(escape, host) {
  return new Promise((resolve) => {
    const child = spawn("ping", [host.includes(":") ? "-6" : "-4", "-c", "1", "-W", "1", host], { stdio: "ignore" });
    const timer = setTimeout(() => child.kill("SIGKILL"), WAIT * 3);
    child.on("error", () => {
      clearTimeout(timer);
      resolve(record(escape, "no echo reply", "ping is not installed; ICMP sockets covered by the socket probes", false));
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve(record(escape, "no echo reply", code === 0 ? "echo reply received" : "no reply", code === 0));
    });
  });
}

/**
 * A namespace of its own, through util-linux's unshare(1) as a child: Node has threads, and the
 * kernel refuses unshare(CLONE_NEWUSER) to any threaded process, whatever the sandbox allows.
 */
function namespaceProbe(escape, args) {
  return new Promise((resolve) => {
    const child = spawn("unshare", [...args, "--", "true"], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill("SIGKILL"), WAIT * 3);
    child.on("error", (error) => {
      clearTimeout(timer);
      resolve(record(escape, "refused by the kernel", `could not test (${error.code ?? error.message})`, true));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      const why = (stderr.trim().split("\n").pop() ?? "").replace(/^unshare: (unshare failed: )?/, "").slice(0, 60);
      resolve(record(escape, "refused by the kernel", code === 0 ? "created" : `refused (${why || `exit ${code}`})`, code === 0));
    });
  });
}

/** The sandbox's own user namespace allows no namespace (0); raising that limit takes CAP_SYS_RESOURCE there. */
async function namespaceLimitProbe() {
  const file = "/proc/sys/user/max_user_namespaces";
  const escape = "raise user.max_user_namespaces";
  try {
    await writeFile(file, "1000\n");
    return record(escape, "refused by the kernel", "raised", true);
  } catch (error) {
    const limit = await readFile(file, "utf8").then((v) => v.trim(), () => "unreadable");
    return record(escape, "refused by the kernel", `refused (${error.code ?? error.message}); the limit is ${limit}`, false);
  }
}

const c = input.canary ?? {};
const v4 = c.v4 ?? "192.0.2.10";
const v6 = c.v6 ?? "2001:db8::10";
const ula = c.ula ?? "fd00::10";
const port = c.port ?? 80;
const nonce = input.nonce ?? "x";
const ns = nameserver();

const probes = [
  () => silentTcpProbe("TCP to a non-Bulkhead address (IPv4)", v4, c.bannerPort ?? port),
  () => httpProbe("HTTP to a non-Bulkhead address (IPv4)", v4, port),
  () => httpProbe("TCP to a global IPv6 address", v6, port),
  () => httpProbe("TCP to a unique-local IPv6 address", ula, port),
  () => httpProbe("TCP to the IPv6 link-local gateway", `fe80::1%${input.interface ?? "eth0"}`, port, "/", "fe80::1"),
  () => udpProbe("UDP to an outside address (IPv4)", v4, c.udpPort ?? 9999),
  () => udpProbe("UDP to an outside address (IPv6)", v6, c.udpPort ?? 9999),
  () => udpProbe("UDP to the IPv6 link-local gateway", `fe80::1%${input.interface ?? "eth0"}`, c.udpPort ?? 9999),
  () => dnsProbe("UDP DNS to an outside resolver", c.resolver ?? "192.0.2.53", `verify-${nonce}.example.com`, 1, "NXDOMAIN from Bulkhead's resolver (or the gateway, never resolved upstream)", notResolved),
  () => dnsProbe("DNS TXT query", ns, `verify-${nonce}.example.com`, 16, "REFUSED", (s) => s.rcode === "REFUSED"),
  () => dnsProbe("DNS long-label query (tunnelling)", ns, `${"a".repeat(63)}.${"b".repeat(63)}.${nonce}.exfil.example.com`, 1, "NXDOMAIN (or the gateway), never resolved upstream", notResolved),
  // DNS over TLS: reaching port 853 of any outside server at all is the escape.
  () => silentTcpProbe("DNS over TLS (TCP 853)", v4, 853),
  () => silentTcpProbe("TCP 443 to an outside address", v4, 443),
  async () => {
    const reply = await talk({ host: v4, port: 443, useTls: true, servername: "cloudflare-dns.com", payload: "POST /dns-query HTTP/1.1\r\nHost: cloudflare-dns.com\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" });
    const j = judgeHttp(reply);
    return record("DNS over HTTPS to a name the sandbox never resolved", "refused by Bulkhead", reply.connected ? j.got : `TLS refused (${reply.state})`, reply.connected && j.escaped);
  },
  () => icmpProbe("ICMP echo (IPv4)", v4),
  () => icmpProbe("ICMP echo (IPv6)", v6),
  async () => socketProbes(),
  () => namespaceProbe("nested user namespace (unshare --user)", ["--user"]),
  () => namespaceProbe("user namespace as root, with a network (unshare -r --net)", ["--map-root-user", "--net"]),
  () => namespaceProbe("user namespace as root, with mounts (unshare -r --mount)", ["--map-root-user", "--mount"]),
  () => namespaceProbe("network namespace (unshare --net)", ["--net"]),
  () => namespaceLimitProbe(),
  () => httpProbe("cloud metadata 169.254.169.254", "169.254.169.254", 80, "/latest/meta-data/"),
  () => httpProbe("cloud metadata fd00:ec2::254", "fd00:ec2::254", 80, "/latest/meta-data/"),
];
for (const address of input.bulkheadAddresses ?? []) {
  const p = input.bulkheadPorts ?? {};
  if (p.health) probes.push(() => httpProbe(`Bulkhead health port (${bracket(address)}:${p.health})`, address, p.health, "/healthz"));
  if (p.dashboard) probes.push(() => httpProbe(`Bulkhead dashboard (${bracket(address)}:${p.dashboard})`, address, p.dashboard, "/"));
  if (p.proxy) {
    probes.push(async () => {
      const reply = await talk({ host: address, port: p.proxy, payload: "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n" });
      const j = judgeHttp(reply);
      const explicit = reply.data.includes("token_missing");
      return record(`Bulkhead explicit proxy (${bracket(address)}:${p.proxy})`, "refused by the sandbox listener", explicit ? "reached the explicit proxy" : j.got, j.escaped || explicit);
    });
  }
  if (p.database) {
    probes.push(async () => {
      const reply = await talk({ host: address, port: p.database, payload: Buffer.from([0, 0, 0, 8, 4, 210, 22, 47]) });
      const escaped = reply.data.length > 0;
      return record(`Bulkhead database (${bracket(address)}:${p.database})`, "closed by Bulkhead", escaped ? `database answered (${JSON.stringify(reply.data.slice(0, 4))})` : reply.connected ? "closed by Bulkhead" : `no connection (${reply.state})`, escaped);
    });
  }
}
const results = (await Promise.all(probes.map((probe) => probe()))).flat();
process.stdout.write(`${JSON.stringify(results)}\n`);
