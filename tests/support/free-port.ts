import net from "node:net";

/**
 * Ports handed to servers a test starts in another process (a worker, a dashboard), which bind them
 * a moment later. They come from below the kernel's ephemeral range (32768-60999 here): a port the
 * kernel picked for `listen(0)` and that was then released is just as likely to be given next to
 * the source of any outgoing connection of a parallel test file (to PostgreSQL, to an upstream),
 * which then holds it when the child binds it ("Port ... is already in use"). Below the range the
 * kernel never hands a port out by itself. Each test process (vitest's pool slot, Playwright's
 * parallel index) draws from a block of its own, so two files running at once never pick the same
 * port; a port is handed out once per process and only after it could be bound on both 127.0.0.1
 * and the wildcard address. tests/support/test-postgres.ts keeps to 30000-32000.
 */
const LOW = 20000;
const BLOCK = 2000;
const BLOCKS = 5;

const slot = Number(process.env.VITEST_POOL_ID ?? process.env.TEST_PARALLEL_INDEX ?? process.pid) || 0;
const first = LOW + (slot % BLOCKS) * BLOCK;
let next = Math.floor(Math.random() * BLOCK);
const handedOut = new Set<number>();

function bindable(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** A TCP port no other server holds now and no other test process of this run will be given. */
export async function freePort(): Promise<number> {
  for (let tried = 0; tried < BLOCK; tried++) {
    const port = first + (next++ % BLOCK);
    if (handedOut.has(port)) continue;
    if ((await bindable(port, "127.0.0.1")) && (await bindable(port, "0.0.0.0"))) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port left in ${first}-${first + BLOCK - 1}`);
}
