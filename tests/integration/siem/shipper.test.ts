import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSiemShipper } from "@/lib/audit/siem/shipper";
import { httpTransport, syslogTcpTransport } from "@/lib/audit/siem/transport";
import { recordAuditEvent } from "@/lib/audit/record";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { until } from "../audit/helpers";
import { siemReceiver } from "./receiver";

describe("SIEM streaming", () => {
  let t: TestDatabase;
  let dir: string;
  const record = async (n: number) => {
    for (let i = 0; i < n; i++) await recordAuditEvent(t.db, { type: "agent.created", actor: { actorType: "system", actorId: "test" }, data: { i } });
  };
  const allSeqs = async () => (await t.db.auditEvent.findMany({ select: { seq: true }, orderBy: { seq: "asc" } })).map((r) => String(r.seq));

  beforeAll(async () => {
    t = await createTestDatabase();
    dir = await mkdtemp(path.join(tmpdir(), "bh-siem-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
    await t.drop();
  });

  it("ships every event once over HTTP through an outage and a restart, and reports its lag", async () => {
    const r = await siemReceiver();
    const cursorFile = path.join(dir, "http-cursor.json");
    const start = () => startSiemShipper({ db: t.db, transport: httpTransport(r.url, { timeoutMs: 2000 }), cursorFile, batchSize: 7, intervalMs: 20, maxBackoffMs: 100 });
    await record(20);
    let shipper = start();
    await until(async () => r.seqs.length === 20, 10_000, "the first 20 events");

    r.set("503");
    await record(10);
    await until(async () => (await shipper.status()).state === "retrying", 10_000, "retrying");
    const behind = await shipper.status();
    expect(behind).toMatchObject({ lagEvents: 10, cursorSeq: "20", lastError: expect.stringMatching(/503/) });
    await r.down(); // now refusing connections altogether
    await record(10);
    await new Promise((res) => setTimeout(res, 200));
    await shipper.stop(); // a restart while the SIEM is away
    await r.up();
    r.set("up");
    shipper = start();
    await until(async () => r.seqs.length >= 40, 10_000, "the backlog drained");
    await until(async () => {
      const s = await shipper.status();
      return s.lagEvents === 0 && s.state === "idle";
    }, 10_000, "caught up and idle");
    expect(r.seqs).toEqual(await allSeqs()); // nothing lost, nothing twice, in chain order
    expect(await shipper.status()).toMatchObject({ lagEvents: 0, lagSeconds: 0, lastError: null });
    await shipper.stop();
    await r.close();
  });

  it("follows no redirect: a 3xx from the endpoint is a failure, the batch is not accepted and nothing reaches the place it points to", async () => {
    // Where the redirects point: a receiver that would answer any request with 200.
    const elsewhere: string[] = [];
    const target = http.createServer((req, res) => {
      elsewhere.push(`${req.method} ${req.url}`);
      req.resume();
      req.on("end", () => res.writeHead(200).end());
    });
    await new Promise<void>((res) => target.listen(0, "127.0.0.1", () => res()));
    const targetUrl = `http://127.0.0.1:${(target.address() as AddressInfo).port}/collected`;
    // 302 and 303 turn the POST into a GET (whose 200 would accept a batch nobody received);
    // 307 and 308 resend the whole batch there.
    for (const status of [301, 302, 303, 307, 308]) {
      const intake = http.createServer((req, res) => {
        req.resume();
        req.on("end", () => res.writeHead(status, { location: targetUrl }).end());
      });
      await new Promise<void>((res) => intake.listen(0, "127.0.0.1", () => res()));
      const cursorFile = path.join(dir, `redirect-${status}-cursor.json`);
      const shipper = startSiemShipper({ db: t.db, transport: httpTransport(`http://127.0.0.1:${(intake.address() as AddressInfo).port}/ingest`, { timeoutMs: 2000 }), cursorFile, batchSize: 5, intervalMs: 20, maxBackoffMs: 100 });
      await until(async () => (await shipper.status()).state === "retrying", 10_000, `retrying after ${status}`);
      const s = await shipper.status();
      expect(s.cursorSeq, `after a ${status}`).toBe("0");
      expect(s.lastError).toMatch(new RegExp(`answered ${status}, a redirect, which is not followed`));
      await shipper.stop();
      intake.closeAllConnections();
      await new Promise<void>((res) => intake.close(() => res()));
    }
    expect(elsewhere).toEqual([]);
    target.closeAllConnections();
    await new Promise<void>((res) => target.close(() => res()));
  });

  it("ships RFC 5424 messages over TCP with octet counting, and reconnects", async () => {
    const received: string[] = [];
    let buffer = "";
    const server = net.createServer((s) => s.on("data", (c: Buffer) => {
      buffer += c.toString("utf8");
      for (let m = /^(\d+) /.exec(buffer); m && buffer.length >= m[0].length + Number(m[1]); m = /^(\d+) /.exec(buffer)) {
        received.push(buffer.slice(m[0].length, m[0].length + Number(m[1])));
        buffer = buffer.slice(m[0].length + Number(m[1]));
      }
    }));
    await new Promise<void>((res) => server.listen(0, "127.0.0.1", () => res()));
    const port = (server.address() as AddressInfo).port;
    const shipper = startSiemShipper({ db: t.db, transport: syslogTcpTransport("127.0.0.1", port), cursorFile: path.join(dir, "syslog-cursor.json"), batchSize: 50, intervalMs: 20 });
    const total = (await allSeqs()).length;
    await until(() => received.length === total, 10_000, "every event over syslog");
    expect(received[0]).toMatch(/^<\d+>1 \d{4}-\d\d-\d\dT[\d:.]+Z bulkhead bulkhead - \d+ \[bulkhead@32473 seq="1"\] \{/);
    expect(JSON.parse(received[0]!.slice(received[0]!.indexOf("] ") + 2))).toMatchObject({ metadata: { uid: "1" } });
    await shipper.stop();
    await new Promise<void>((res) => server.close(() => res()));
  });
});
