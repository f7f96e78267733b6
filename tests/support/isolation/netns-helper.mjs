// Runs inside a test network namespace (started with `ip netns exec NS node netns-helper.mjs`
// over an IPC channel) and makes sockets THERE on the test's behalf: listening servers and
// connected clients are sent back as handles, so the test process (in the root namespace) serves
// and speaks through them without ever touching the root namespace's network.
import dgram from "node:dgram";
import net from "node:net";
import { promises as dns } from "node:dns";

// A handed-over listener must not stay open here too: the kernel would give this process (which
// ignores them) a share of the connections and datagrams.
const reply = (id, body, handle, closeHere) => process.send({ id, ...body }, handle, () => closeHere?.());

process.on("message", (m) => {
  const fail = (error) => reply(m.id, { error: String(error?.code ?? error?.message ?? error) });
  try {
    if (m.op === "listen-tcp") {
      const server = net.createServer();
      server.once("error", fail);
      server.listen(m.port, m.host, () => reply(m.id, { port: server.address().port }, server, () => server.close()));
    } else if (m.op === "listen-udp") {
      const socket = dgram.createSocket(m.host.includes(":") ? "udp6" : "udp4");
      socket.once("error", fail);
      socket.bind(m.port, m.host, () => reply(m.id, { port: socket.address().port }, socket, () => socket.close()));
    } else if (m.op === "connect") {
      const socket = net.connect({ host: m.host, port: m.port, localAddress: m.localAddress });
      socket.once("error", fail);
      socket.once("connect", () => {
        socket.pause();
        reply(m.id, { local: socket.localAddress }, socket);
      });
    } else if (m.op === "resolve") {
      const resolver = new dns.Resolver({ timeout: 2000, tries: 1 });
      resolver.setServers([m.server]);
      resolver[m.type === "AAAA" ? "resolve6" : "resolve4"](m.name).then((addresses) => reply(m.id, { addresses }), fail);
    } else if (m.op === "udp-exchange") {
      const socket = dgram.createSocket(m.host.includes(":") ? "udp6" : "udp4");
      const timer = setTimeout(() => {
        socket.close();
        reply(m.id, { reply: null });
      }, m.timeoutMs ?? 1000);
      socket.on("message", (msg) => {
        clearTimeout(timer);
        socket.close();
        reply(m.id, { reply: msg.toString("latin1") });
      });
      const send = () => socket.send(Buffer.from(m.payload), m.port, m.host);
      if (m.localAddress) socket.bind({ address: m.localAddress }, send);
      else send();
    }
  } catch (error) {
    fail(error);
  }
});
process.send({ ready: true });
