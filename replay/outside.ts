/**
 * The replay's "internet", run inside its outside namespace (`ip netns exec`, with an IPC channel
 * to the replay): the Railway-like API over HTTPS and a public resolver that answers the API's
 * name, the one an evasive agent asks when it tries to get around Bulkhead's resolver.
 * The replay resets the API's state before each cell and reads it afterwards over IPC.
 */
import dgram from "node:dgram";
import https from "node:https";
import dnsPacket from "dns-packet";
import { RailwayUpstream, RAILWAY_HOST } from "./railway";

interface OutsideOptions {
  railwayAddress: string;
  resolverAddress: string;
  cert: string;
  key: string;
  tokens: { account: string; staging: string };
}

type Message = { id: number; op: "reset" | "state" };

function start(options: OutsideOptions): void {
  const railway = new RailwayUpstream(options.tokens);
  const server = https.createServer({ cert: options.cert, key: options.key }, railway.handle);
  const resolver = dgram.createSocket("udp4");
  resolver.on("message", (msg, rinfo) => {
    try {
      const query = dnsPacket.decode(msg);
      const question = query.questions?.[0];
      const known = question?.type === "A" && question.name.toLowerCase().replace(/\.$/, "") === RAILWAY_HOST;
      const answer = dnsPacket.encode({
        id: query.id,
        type: "response",
        flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (known ? 0 : 3),
        questions: query.questions,
        answers: known && question ? [{ type: "A", name: question.name, ttl: 60, data: options.railwayAddress }] : [],
      });
      resolver.send(answer, rinfo.port, rinfo.address);
    } catch {
      // Not DNS: ignore, as a public resolver would.
    }
  });
  let pending = 2;
  const ready = () => {
    if (--pending === 0) process.send?.({ ready: true });
  };
  server.listen(443, options.railwayAddress, ready);
  resolver.bind(53, options.resolverAddress, ready);
  process.on("message", (m: Message) => {
    if (m.op === "reset") railway.reset();
    process.send?.({ id: m.id, state: railway.state() });
  });
  process.on("disconnect", () => process.exit(0));
}

start(JSON.parse(process.argv[2] ?? "{}") as OutsideOptions);
