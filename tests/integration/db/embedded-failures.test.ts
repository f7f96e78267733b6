import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startEmbeddedDatabase } from "@/lib/db/embedded";
import { assertPortFree } from "@/cli/runtime/ports";

describe("start-up failures give clear messages and change nothing", () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!();
  });

  it("refuses a data folder from another PostgreSQL major version and leaves it untouched", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "bh-pgver-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await mkdir(path.join(dir, "postgres"));
    await writeFile(path.join(dir, "postgres", "PG_VERSION"), "14\n");
    await writeFile(path.join(dir, "postgres", "precious"), "data");
    await expect(startEmbeddedDatabase({ dataDir: dir, port: 1 })).rejects.toThrow(
      /created by PostgreSQL 14, but the bundled server is PostgreSQL \d+\. Nothing was changed/,
    );
    expect((await readdir(path.join(dir, "postgres"))).sort()).toEqual(["PG_VERSION", "precious"]);
  });

  it("refuses a folder that is not a PostgreSQL data directory", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "bh-pgjunk-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await mkdir(path.join(dir, "postgres"));
    await writeFile(path.join(dir, "postgres", "notes.txt"), "mine");
    await expect(startEmbeddedDatabase({ dataDir: dir, port: 1 })).rejects.toThrow(/is not a PostgreSQL data directory/);
  });

  it("names the variable when a port is taken", async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    cleanups.push(() => new Promise((r) => server.close(r)));
    const port = (server.address() as net.AddressInfo).port;
    await expect(assertPortFree("127.0.0.1", port, "BULKHEAD_APP_PORT")).rejects.toThrow(
      `Port ${port} on 127.0.0.1 is already in use (BULKHEAD_APP_PORT)`,
    );
  });

  it("says when the embedded database port is taken", async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    cleanups.push(() => new Promise((r) => server.close(r)));
    const port = (server.address() as net.AddressInfo).port;
    const dir = await mkdtemp(path.join(tmpdir(), "bh-pgport-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await expect(startEmbeddedDatabase({ dataDir: dir, port })).rejects.toThrow(`Port ${port} for the embedded PostgreSQL is already in use`);
  });
});
