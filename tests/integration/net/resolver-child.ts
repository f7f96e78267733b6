/**
 * Runs inside fresh mount and network namespaces (see hosts-file.test.ts) where /etc/hosts and
 * /etc/resolv.conf are the test's own and 127.0.0.1:53 is a tiny DNS server started here. Prints
 * one JSON object: what the production resolver path made of each name.
 */
import dgram from "node:dgram";
import { promises as dns } from "node:dns";
import { resolveDestination, systemLookup } from "@/lib/net/resolve";

const ZONE: Record<string, string> = {
  // Reachable only through the search domain: an absolute lookup must never find it.
  "api.example.com.corp.example": "10.9.9.9",
  "public.example.com": "93.184.216.34",
  "pinned.example.com": "93.184.216.99",
};

function answer(query: Buffer): Buffer {
  let offset = 12;
  const labels: string[] = [];
  while (query[offset]! > 0) {
    const length = query[offset]!;
    labels.push(query.subarray(offset + 1, offset + 1 + length).toString("latin1"));
    offset += length + 1;
  }
  const questionEnd = offset + 5;
  const type = query.readUInt16BE(offset + 1);
  const address = ZONE[labels.join(".").toLowerCase()];
  const header = Buffer.alloc(12);
  query.copy(header, 0, 0, 2);
  header.writeUInt16BE(address === undefined ? 0x8183 : 0x8180, 2);
  header.writeUInt16BE(1, 4);
  const answers = address !== undefined && type === 1 ? 1 : 0;
  header.writeUInt16BE(answers, 6);
  const parts = [header, query.subarray(12, questionEnd)];
  if (answers) {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0);
    rr.writeUInt16BE(1, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(60, 6);
    rr.writeUInt16BE(4, 10);
    address!.split(".").forEach((octet, i) => rr.writeUInt8(Number(octet), 12 + i));
    parts.push(rr);
  }
  return Buffer.concat(parts);
}

const server = dgram.createSocket("udp4");
server.on("message", (msg, rinfo) => server.send(answer(msg), rinfo.port, rinfo.address));
await new Promise<void>((resolve) => server.bind(53, "127.0.0.1", () => resolve()));

const options = { lookup: systemLookup, allowedPorts: [443], deniedPorts: [] };
const internal = { ...options, allowInternal: ["10.0.0.0/8"] };
const describe = (r: Awaited<ReturnType<typeof resolveDestination>>) => (r.ok ? { ok: true, address: r.address } : { ok: false, code: r.code, reason: r.reason });
const out = {
  // The control: this resolver does apply the search domain to a relative lookup.
  relativeLookup: await dns.lookup("api.example.com").then((a) => a.address, (e: NodeJS.ErrnoException) => e.code),
  searchDomain: describe(await resolveDestination({ host: "api.example.com", port: 443 }, internal)),
  dns: describe(await resolveDestination({ host: "public.example.com", port: 443 }, options)),
  hostsInternal: describe(await resolveDestination({ host: "alias.example.com", port: 443 }, internal)),
  hostsForbidden: describe(await resolveDestination({ host: "Alias.Example.COM", port: 443 }, options)),
  hostsPublic: describe(await resolveDestination({ host: "www.aliased.example", port: 443 }, options)),
  hostsFirst: describe(await resolveDestination({ host: "pinned.example.com", port: 443 }, options)),
};
server.close();
process.stdout.write(JSON.stringify(out));
