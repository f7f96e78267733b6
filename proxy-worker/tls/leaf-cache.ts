/**
 * The proxy's per-server-name certificates for TLS interception. Names come from the agent's
 * SNI, so each is validated before anything is minted; mints are cached (bounded LRU), renewed
 * an hour before expiry, and concurrent handshakes for one name share a single mint.
 */
import { constants } from "node:crypto";
import tls from "node:tls";
import { AppError } from "@/lib/errors/app-error";
import { DEFAULT_LEAF_VALIDITY_HOURS, issueLeafCertificate, validateServerName, type IssuingCertificateAuthority } from "@/lib/tls/leaf";

const RENEW_BEFORE_EXPIRY_MS = 60 * 60 * 1000;
export const DEFAULT_MAX_LEAF_ENTRIES = 1000;

export interface LeafCertificateCacheOptions {
  ca: IssuingCertificateAuthority;
  /** Bound on cached names (least recently used are dropped first). */
  maxEntries?: number;
  validityHours?: number;
}

export interface LeafCacheStats {
  /** Served from the cache. */
  hits: number;
  /** Started a mint (first use, expiring soon, or evicted). */
  misses: number;
  /** Joined a mint another handshake had already started. */
  coalesced: number;
  size: number;
}

interface Entry {
  context: tls.SecureContext;
  notBefore: number;
  notAfter: number;
}

export class LeafCertificateCache {
  private ca: IssuingCertificateAuthority;
  private readonly maxEntries: number;
  private readonly validityHours: number;
  // A Map iterates in insertion order; re-inserting on every hit makes the first key the LRU.
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<Entry>>();
  // Bumped when the CA is replaced, so a mint that started under the old CA is not cached.
  private generation = 0;
  private counters = { hits: 0, misses: 0, coalesced: 0 };

  constructor(options: LeafCertificateCacheOptions) {
    const maxEntries = options.maxEntries ?? DEFAULT_MAX_LEAF_ENTRIES;
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new TypeError("maxEntries must be a positive integer");
    this.ca = options.ca;
    this.maxEntries = maxEntries;
    this.validityHours = options.validityHours ?? DEFAULT_LEAF_VALIDITY_HOURS;
  }

  /** The TLS context presenting a leaf for `serverName`; throws InvalidServerNameError for a bad name. */
  async secureContextFor(serverName: string, now: Date = new Date()): Promise<tls.SecureContext> {
    const name = validateServerName(serverName).name;
    const t = now.getTime();
    const cached = this.entries.get(name);
    if (cached && cached.notBefore <= t && cached.notAfter - t > RENEW_BEFORE_EXPIRY_MS) {
      this.entries.delete(name);
      this.entries.set(name, cached);
      this.counters.hits++;
      return cached.context;
    }
    const pending = this.inflight.get(name);
    if (pending) {
      this.counters.coalesced++;
      return (await pending).context;
    }
    this.counters.misses++;
    const mint = this.mint(name, now);
    this.inflight.set(name, mint);
    try {
      return (await mint).context;
    } finally {
      this.inflight.delete(name);
    }
  }

  /** Whether `serverName` would be served without a new mint (a fresh leaf cached, or one being minted). */
  holds(serverName: string, now: Date = new Date()): boolean {
    let name: string;
    try {
      name = validateServerName(serverName).name;
    } catch {
      return false;
    }
    const cached = this.entries.get(name);
    const t = now.getTime();
    return (cached !== undefined && cached.notBefore <= t && cached.notAfter - t > RENEW_BEFORE_EXPIRY_MS) || this.inflight.has(name);
  }

  /** After a CA rotation: forget every leaf signed by the old CA. */
  replaceCertificateAuthority(ca: IssuingCertificateAuthority): void {
    this.ca = ca;
    this.generation++;
    this.entries.clear();
  }

  stats(): LeafCacheStats {
    return { ...this.counters, size: this.entries.size };
  }

  private async mint(name: string, now: Date): Promise<Entry> {
    const generation = this.generation;
    const leaf = await issueLeafCertificate({ ca: this.ca, serverName: name, now, validityHours: this.validityHours });
    const entry: Entry = {
      context: tls.createSecureContext({ key: leaf.keyPem, cert: leaf.certPem, minVersion: "TLSv1.2", secureOptions: NO_RENEGOTIATION }),
      notBefore: leaf.notBefore.getTime(),
      notAfter: leaf.notAfter.getTime(),
    };
    if (generation === this.generation) {
      this.entries.delete(name);
      this.entries.set(name, entry);
      for (const oldest of this.entries.keys()) {
        if (this.entries.size <= this.maxEntries) break;
        this.entries.delete(oldest);
      }
    }
    return entry;
  }
}

/** The SNI differs from the host the agent was authorised to reach (the CONNECT target). */
export class ServerNameMismatchError extends AppError {
  readonly reason = "sni_mismatch";
  constructor() {
    super("FORBIDDEN", "TLS server name does not match the authorised host");
    this.name = "ServerNameMismatchError";
  }
}

export interface InterceptingTlsOptionsSettings {
  /**
   * The authorised host of this tunnel (the CONNECT target). When set, a handshake whose SNI is
   * anything else is refused before a certificate is minted.
   */
  expectedServerName?: string;
  /**
   * Asked for every valid server name before a certificate is made for it: an Error refuses the
   * handshake (nothing minted). A transparent listener knows its client only by address, and
   * checks there that the name is one its sandbox's task could reach and within its budget.
   */
  admit?: (name: string) => Error | null;
  /** The clock (tests). */
  now?: () => Date;
}

/**
 * Client-initiated TLS 1.2 renegotiation is refused (a `no_renegotiation` alert). The intercepting
 * sockets are TLSSockets made by hand, not by a tls.Server, so Node's own limit on renegotiations
 * (3 per 10 minutes) never applies to them: one tunnel could make the worker compute one full
 * handshake after another, past every connection and request limit. Set on the leaves' contexts
 * too, since a context given as `secureContext` (an IP literal's leaf) replaces these options'.
 */
const NO_RENEGOTIATION = constants.SSL_OP_NO_RENEGOTIATION;

/**
 * Server options for `tls.createServer(...)` or `new tls.TLSSocket(socket, { isServer: true, ... })`.
 *
 * There is deliberately no default certificate: Node only calls SNICallback when the client sent
 * SNI, so a ClientHello without SNI finds no certificate and the handshake fails. Do not add
 * `key`/`cert`/`secureContext` to these options, or such clients would be served that default.
 */
export function createInterceptingTlsOptions(
  cache: LeafCertificateCache,
  settings: InterceptingTlsOptionsSettings = {},
): Required<Pick<tls.TlsOptions, "SNICallback" | "minVersion" | "secureOptions">> {
  const expected = settings.expectedServerName === undefined ? undefined : validateServerName(settings.expectedServerName).name;
  const clock = settings.now ?? (() => new Date());
  return {
    minVersion: "TLSv1.2",
    secureOptions: NO_RENEGOTIATION,
    SNICallback(serverName, callback) {
      let name: string;
      try {
        name = validateServerName(serverName).name;
        if (expected !== undefined && name !== expected) throw new ServerNameMismatchError();
        const refused = settings.admit?.(name);
        if (refused) throw refused;
      } catch (error) {
        callback(error as Error, undefined);
        return;
      }
      // The handshake may be gone by the time the leaf is minted: whatever the callback does
      // then must not become an unhandled rejection that takes the worker down.
      const deliver = (error: Error | null, context?: tls.SecureContext) => {
        try {
          callback(error, context);
        } catch {
          // nothing left to answer
        }
      };
      cache.secureContextFor(name, clock()).then(
        (context) => deliver(null, context),
        (error: unknown) => deliver(error instanceof Error ? error : new Error(String(error))),
      );
    },
  };
}
