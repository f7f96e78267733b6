import { Client } from "undici";
import { checkedConnector } from "@/lib/net/dial";
import { isMachineAddress } from "@/lib/net/own-addresses";
import { resolveDestination, systemLookup, type CheckedDestination, type DestinationRefusalCode, type DestinationResult, type Lookup } from "@/lib/net/resolve";

/**
 * Where webhooks may be sent. A webhook is a request the dashboard makes to a URL someone typed,
 * so it goes through the same destination rules as an agent's request through the proxy
 * (`lib/net/`, docs/destinations.md): public addresses only, every DNS answer checked, the socket
 * opened to the checked address and no other (a name that answers differently the second time
 * reaches nothing new). Non-public networks are allowed only where the machine's operator says so
 * (BULKHEAD_WEBHOOK_ALLOWED_NETWORKS), never from the dashboard; and Bulkhead's own ports on this
 * machine's addresses are refused even then, so a webhook cannot be pointed at Bulkhead itself.
 */
export interface WebhookNetworkPolicy {
  /** CIDRs of non-public networks receivers may be on. */
  allowedNetworks: readonly string[];
  /** Bulkhead's own ports (dashboard, proxy, health, sandbox listener, PostgreSQL). */
  ownPorts: readonly number[];
  /** The system resolver in production; injected in tests. */
  lookup?: Lookup;
  isOwnAddress?: (address: string) => boolean;
}

/** Checks a webhook URL's destination as it would be dialed now. */
export async function checkWebhookDestination(url: URL, policy: WebhookNetworkPolicy): Promise<DestinationResult> {
  const port = url.port === "" ? (url.protocol === "https:" ? 443 : 80) : Number(url.port);
  const allowed = policy.allowedNetworks;
  return resolveDestination(
    { host: url.hostname, port },
    {
      lookup: policy.lookup ?? systemLookup,
      allowInternal: allowed,
      // A local name (`hooks.internal`, `localhost`) only where networks are allowed, and then its
      // addresses must all fall inside them.
      allowInternalNames: allowed.length > 0 ? [url.hostname] : [],
      allowedPorts: [port],
      deniedPorts: policy.ownPorts,
      isOwnAddress: policy.isOwnAddress ?? isMachineAddress,
    },
  );
}

/**
 * The sentence shown when a webhook's destination is refused. Only an address outside the public
 * internet is a matter of BULKHEAD_WEBHOOK_ALLOWED_NETWORKS; a host that is not one
 * (`https://a..b/`, a name too long), a port that is not one (`:0`) or one of Bulkhead's own (which
 * no network setting allows) used to be told "Webhooks are sent to public addresses only" and to
 * ask the operator for a network, which would change nothing.
 */
export function refusedDestinationMessage(refusal: { code: DestinationRefusalCode; reason: string }, allowedNetworks: readonly string[]): string {
  if (refusal.code === "invalid_host") return `This URL's host cannot be used (${refusal.reason}). Enter the receiver's host name or address.`;
  if (refusal.code === "port_forbidden") return `This URL's port cannot be used (${refusal.reason}). Webhooks are never sent to Bulkhead itself.`;
  // The proxy's wording for a local name speaks of services, which webhooks do not have.
  const reason = refusal.reason.replace(/; refused unless an internal service names it$/, "");
  return `Webhooks are sent to public addresses only (${reason}). ${allowedNetworksSentence(allowedNetworks)}`;
}

/** Which networks besides public addresses webhooks may reach, and where that is set. */
export function allowedNetworksSentence(allowedNetworks: readonly string[]): string {
  return allowedNetworks.length > 0
    ? `The networks allowed besides public addresses are ${allowedNetworks.join(", ")} (BULKHEAD_WEBHOOK_ALLOWED_NETWORKS).`
    : "To send webhooks to a receiver on a private network, the machine's operator lists it in BULKHEAD_WEBHOOK_ALLOWED_NETWORKS.";
}

export interface WebhookPost {
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
  /** Extra CA certificates for https receivers (tests); the system's are always trusted. */
  ca?: string | Buffer | Array<string | Buffer>;
}

/**
 * POSTs to a checked destination: one connection to the checked address, TLS verified against
 * the URL's host, no redirect followed. Returns the status; the body is discarded.
 */
export async function postToChecked(url: URL, destination: CheckedDestination, post: WebhookPost): Promise<number> {
  const https = url.protocol === "https:";
  const client = new Client(url.origin, {
    connect: checkedConnector(destination, { timeoutMs: post.timeoutMs, tls: https ? { servername: destination.host, ca: post.ca } : undefined }),
    headersTimeout: post.timeoutMs,
    bodyTimeout: post.timeoutMs,
    pipelining: 0,
  });
  try {
    const res = await client.request({
      method: "POST",
      path: `${url.pathname}${url.search}`,
      headers: { ...post.headers, host: url.host },
      body: post.body,
      signal: AbortSignal.timeout(post.timeoutMs),
    });
    await res.body.dump().catch(() => undefined);
    return res.statusCode;
  } finally {
    await client.close().catch(() => undefined);
  }
}
