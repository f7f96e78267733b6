import net from "node:net";
import { FORM_BODY_LIMIT_BYTES } from "../../lib/http/form-limit";
import { MAX_JSON_BODY_BYTES } from "../../lib/http/body-limit";
// @ts-expect-error: a plain .mjs module of the dashboard's server (scripts/app-server.mjs), without types
import { DISCARD_MAX_BYTES as DISCARD } from "../../scripts/request-guard.mjs";
import { actionId } from "./support/actions";
import { expect, test } from "./support/fixtures";

/**
 * Next.js copies the body of every request its proxy sees (up to 10 MB) before any of the
 * dashboard's code runs. A body larger than its path accepts (the form limit on pages, the API's
 * JSON limit under /api/) is refused by the dashboard's own server before that: declared, at once
 * and unread; sent without a length, once the limit has arrived (scripts/request-guard.mjs).
 * Signed out here: nobody needs an account to send bytes.
 */

interface Exchange {
  answer: string;
  /** Chunks the client managed to write before the connection ended. */
  written: number;
  /** Whether the connection ended (the server's answer and close) before the client gave up waiting. */
  ended: boolean;
}

/** Sends `head` and then `chunks` as fast as the connection takes them; gives up after `waitMs`. */
function exchange(baseURL: string, head: string, chunks: Buffer[], waitMs: number): Promise<Exchange> {
  const { hostname, port } = new URL(baseURL);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), hostname);
    let answer = "";
    let written = 0;
    let ended = false;
    const timer = setTimeout(() => socket.destroy(), waitMs);
    socket.on("data", (d) => (answer += d.toString("latin1")));
    socket.on("error", () => undefined);
    socket.on("end", () => (ended = true));
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ answer, written, ended: ended || answer.length > 0 });
    });
    socket.write(head);
    const next = () => {
      while (written < chunks.length && !socket.destroyed) {
        const ok = socket.write(chunks[written++]!);
        if (!ok) return void socket.once("drain", next);
      }
    };
    next();
  });
}

const host = (baseURL: string) => new URL(baseURL).host;
const DISCARD_MAX_BYTES = DISCARD as number;

test("a declared body over its path's limit is refused with 413 before any of it is read", async ({ request }, testInfo) => {
  const baseURL = testInfo.project.use.baseURL!;
  const cases = [
    { path: "/agents", limit: FORM_BODY_LIMIT_BYTES, headers: `Next-Action: ${actionId("registerAgentAction")}\r\nContent-Type: text/plain;charset=UTF-8\r\nOrigin: ${baseURL}\r\n`, says: "Payload too large" },
    { path: "/api/v1/agents", limit: MAX_JSON_BODY_BYTES, headers: "Content-Type: application/json\r\n", says: '"error":"payload_too_large"' },
    { path: "/api/auth/callback/credentials", limit: MAX_JSON_BODY_BYTES, headers: "Content-Type: application/x-www-form-urlencoded\r\n", says: '"error":"payload_too_large"' },
  ];
  for (const c of cases) {
    // Only the head is sent: had anything waited for the body, no answer would come. Far over the
    // limit, the connection then closes without reading any of it.
    const r = await exchange(baseURL, `POST ${c.path} HTTP/1.1\r\nHost: ${host(baseURL)}\r\n${c.headers}Content-Length: ${DISCARD_MAX_BYTES + 1}\r\n\r\n`, [], 10_000);
    expect(r.answer, c.path).toMatch(/^HTTP\/1\.1 413 /);
    expect(r.answer, c.path).toContain(c.says);
    expect(r.answer.toLowerCase(), c.path).toContain("connection: close");
    expect(r.ended, `${c.path}: the connection is closed`).toBe(true);
    // Just over, sent whole by a client that reads the answer only then (as most do): the body is
    // thrown away as it arrives, and the client gets the 413, not a reset connection.
    const res = await request.post(`${baseURL}${c.path}`, { headers: Object.fromEntries(c.headers.trim().split("\r\n").map((h) => h.split(": ", 2) as [string, string])), data: Buffer.alloc(c.limit + 1, "x"), maxRedirects: 0 });
    expect(res.status(), c.path).toBe(413);
    expect(await res.text(), c.path).toContain(c.says);
  }
});

test("a client that asks before sending its body is refused without being told to go on, or told to go on when it may", async ({}, testInfo) => {
  const baseURL = testInfo.project.use.baseURL!;
  const ask = (length: number) => `POST /api/v1/agents HTTP/1.1\r\nHost: ${host(baseURL)}\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: ${length}\r\n\r\n`;
  const refused = await exchange(baseURL, ask(MAX_JSON_BODY_BYTES + 1), [], 10_000);
  expect(refused.answer).toMatch(/^HTTP\/1\.1 413 /);
  expect(refused.answer).not.toContain("100 Continue");
  // Within the limit: "100 Continue" first, then the answer to the whole request (signed out: 401).
  const body = Buffer.from('{"name":"x"}');
  const { hostname, port } = new URL(baseURL);
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    let text = "";
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no answer: ${JSON.stringify(text)}`)));
    socket.on("error", reject);
    socket.on("data", (d) => {
      text += d.toString("latin1");
      if (/^HTTP\/1\.1 100 Continue\r\n\r\n$/.test(text)) socket.write(body);
      if (/\r\n\r\n[^]*HTTP\/1\.1 [2-5]\d\d /.test(text) && text.includes("}")) {
        socket.destroy();
        resolve(text);
      }
    });
    socket.write(ask(body.length));
  });
  expect(answer).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 401 /);
});

test("a chunked body is cut off at its path's limit: 413, and the client cannot send the rest", async ({}, testInfo) => {
  const baseURL = testInfo.project.use.baseURL!;
  const piece = Buffer.alloc(64 * 1024, "x");
  const chunk = Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from("\r\n")]);
  const total = 64 * 1024 * 1024; // past Next.js's 10 MB copy, both limits and all the socket buffers between
  for (const c of [
    { path: "/api/v1/agents", headers: "Content-Type: application/json\r\n" },
    { path: "/agents", headers: `Next-Action: ${actionId("registerAgentAction")}\r\nContent-Type: text/plain;charset=UTF-8\r\nOrigin: ${baseURL}\r\n` },
  ]) {
    const chunks = Array.from({ length: total / piece.length }, () => chunk);
    const r = await exchange(baseURL, `POST ${c.path} HTTP/1.1\r\nHost: ${host(baseURL)}\r\n${c.headers}Transfer-Encoding: chunked\r\n\r\n`, chunks, 30_000);
    expect(r.answer, c.path).toMatch(/^HTTP\/1\.1 413 /);
    expect(r.ended, `${c.path}: the connection is closed`).toBe(true);
    expect(r.written, `${c.path}: chunks written before the connection ended`).toBeLessThan(chunks.length);
  }
  // The dashboard is still there.
  const res = await fetch(`${baseURL}/login`);
  expect(res.status).toBe(200);
});
