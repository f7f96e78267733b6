/**
 * Where a captured connection was going before the fence redirected it: the kernel keeps it in the
 * connection's conntrack entry and returns it through getsockopt(SO_ORIGINAL_DST) on the accepted
 * socket (IP6T_SO_ORIGINAL_DST for IPv6; both are option 80). Node exposes neither, so libc's
 * getsockopt is called through koffi, an FFI whose npm package ships prebuilt binaries (no
 * compiler or download at install; `npm ci` works offline). Loaded lazily: only the sandbox
 * listener needs it, and only on Linux.
 */
import { createRequire } from "node:module";
import type net from "node:net";

const SOL_IP = 0;
const SOL_IPV6 = 41;
const SO_ORIGINAL_DST = 80;

type GetSockOpt = (fd: number, level: number, name: number, buf: Buffer, len: number[]) => number;
let getsockopt: GetSockOpt | null = null;

function load(): GetSockOpt {
  if (getsockopt) return getsockopt;
  const koffi = createRequire(import.meta.url)("koffi") as {
    load(path: string): { func(signature: string): GetSockOpt };
  };
  getsockopt = koffi.load("libc.so.6").func("int getsockopt(int, int, int, _Out_ uint8_t *buf, _Inout_ uint32_t *len)");
  return getsockopt;
}

export interface OriginalDestination {
  address: string;
  port: number;
  family: 4 | 6;
}

/** The accepted socket's file descriptor (libuv keeps it on the handle on Unix). */
function fdOf(socket: net.Socket): number | null {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === "number" && fd >= 0 ? fd : null;
}

/** The original destination, or null when the connection was not redirected (or cannot be read). */
export function originalDestination(socket: net.Socket): OriginalDestination | null {
  const fd = fdOf(socket);
  if (fd === null) return null;
  const v6 = socket.remoteFamily === "IPv6" && !(socket.remoteAddress ?? "").startsWith("::ffff:");
  const buf = Buffer.alloc(28);
  const len = [buf.length];
  const rc = load()(fd, v6 ? SOL_IPV6 : SOL_IP, SO_ORIGINAL_DST, buf, len);
  if (rc !== 0) return null;
  const port = buf.readUInt16BE(2);
  if (!v6) return { address: `${buf[4]}.${buf[5]}.${buf[6]}.${buf[7]}`, port, family: 4 };
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(buf.readUInt16BE(8 + 2 * i).toString(16));
  return { address: compressV6(groups), port, family: 6 };
}

function compressV6(groups: string[]): string {
  // Longest run of zero groups becomes "::" (RFC 5952), so it compares equal to ipaddr.js's form.
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(":");
  return `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLen).join(":")}`;
}
