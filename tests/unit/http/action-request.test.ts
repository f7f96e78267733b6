import { AsyncLocalStorage } from "node:async_hooks";
import { createRequire } from "node:module";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ACTION_ARGUMENT_LIMIT, actionRequestShape, malformedActionRequest, type ReplyDecoder } from "@/lib/http/action-request";

/**
 * The server-action body check of proxy.ts with React's real decoder: the one Next.js's page
 * runtime carries (its vendored react-server build; the proxy bundles the same version). Through
 * the running dashboard: tests/e2e/malformed-actions.spec.ts.
 */
(globalThis as { AsyncLocalStorage?: unknown }).AsyncLocalStorage ??= AsyncLocalStorage;
const requireFromNext = createRequire(path.resolve("node_modules/next/package.json"));
const runtime = requireFromNext("next/dist/compiled/next-server/app-page-turbo.runtime.prod.js") as { vendored: { "react-rsc": { ReactServerDOMTurbopackServer: ReplyDecoder } } };
const decoder = runtime.vendored["react-rsc"].ReactServerDOMTurbopackServer;
const { encodeReply } = requireFromNext("next/dist/compiled/react-server-dom-webpack/client.node") as { encodeReply(value: unknown[]): Promise<string | FormData> };

const LIMIT = 1024 * 1024;
const action = (body: BodyInit | null, headers: Record<string, string> = { "content-type": "text/plain;charset=UTF-8" }) =>
  new Request("http://127.0.0.1:3000/agents/new", { method: "POST", body, headers: { "next-action": "60e65da4edd8588666e3ce89703b1abea32bdaf80b", ...headers } });
const check = (request: Request) => malformedActionRequest(request, decoder, LIMIT);

describe("a server action request's body", () => {
  it("is refused when React's decoder throws on it, whatever its content type claims", async () => {
    for (const body of ['["$Q1"]', '["$W1"]', '["$i1"]', '["$B1"]', '["$h1"]', '["$F1"]', '["$nabc"]', '["$Z"]', "[", '["a",', "", "garbage", "[".repeat(5000) + "]".repeat(5000)]) {
      for (const type of ["text/plain;charset=UTF-8", "application/json", "application/octet-stream", "Multipart/Form-Data; boundary=x"]) {
        expect(await check(action(body, { "content-type": type })), `${body.slice(0, 20)} as ${type}`).toEqual({ status: 400, reason: "has arguments that do not decode" });
      }
    }
    expect(await check(action(null, {}))).toEqual({ status: 400, reason: "has arguments that do not decode" });
  });

  it("is refused when its arguments are not a list Next.js can call an action with", async () => {
    for (const body of ["null", "1", '"x"', '{"a":1}']) expect(await check(action(body)), body).toEqual({ status: 400, reason: "has arguments that are not a list" });
    expect(await check(action(JSON.stringify(Array(ACTION_ARGUMENT_LIMIT + 1).fill(1))))).toEqual({ status: 400, reason: "has more than 1000 arguments" });
    expect(await check(action(JSON.stringify(Array(ACTION_ARGUMENT_LIMIT).fill(1))))).toBeNull();
  });

  it("is refused as too large past the form limit, declared or streamed without a length", async () => {
    const tooLarge = { status: 413, reason: "is larger than the 1 MiB a form of the dashboard may send" };
    expect(await check(action(JSON.stringify(["x".repeat(LIMIT)])))).toEqual(tooLarge);
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        // Never ends on its own: the check must stop reading once it is past the limit.
        sent += 64 * 1024;
        controller.enqueue(new Uint8Array(64 * 1024).fill(0x61));
      },
    });
    const chunked = new Request("http://127.0.0.1:3000/login", { method: "POST", body: stream, headers: { "next-action": "x", "content-type": "text/plain" }, duplex: "half" } as RequestInit);
    expect(await check(chunked)).toEqual(tooLarge);
    expect(sent).toBeLessThan(LIMIT + 256 * 1024);
  });

  it("lets through every shape the dashboard's own pages send, as React's client encodes it", async () => {
    const form = new FormData();
    form.append("name", "agent");
    form.append("description", "x".repeat(200_000));
    form.append("file", new Blob(["bytes"]), "a.txt");
    const argumentLists: unknown[][] = [[], [null, form], [{}, form], ["setup-token", null, form], [form], [null, "text", 1, true, new Date(0), undefined, [1, [2]], { nested: { deep: "x" } }, new Map([["a", 1]]), new Set([1]), 12n]];
    for (const args of argumentLists) {
      const body = await encodeReply(args);
      const request = typeof body === "string" ? action(body) : new Request("http://127.0.0.1:3000/agents/new", { method: "POST", body, headers: { "next-action": "x" } });
      expect(await check(request), JSON.stringify(args.map((a) => typeof a))).toBeNull();
    }
  });

  it("parses a multipart body and decodes its parts; one that does not parse or refers to missing parts is refused", async () => {
    const multipart = (parts: Array<[string, string]>) => ({
      body: parts.map(([k, v]) => `--b\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`).join("") + "--b--\r\n",
      headers: { "content-type": "multipart/form-data; boundary=b" },
    });
    for (const parts of [[["0", '["$Q3"]']], [["1_name", "x"]], [["0", "["]], [["0", '["$B9"]']]] as Array<Array<[string, string]>>) {
      const { body, headers } = multipart(parts);
      expect(await check(action(body, headers)), JSON.stringify(parts)).toEqual({ status: 400, reason: "has arguments that do not decode" });
    }
    for (const [body, type] of [["--nope\r\n", "multipart/form-data; boundary=zzz"], ["x", "multipart/form-data"], ['--b\r\nContent-Disposition: form-data; name="0"\r\n\r\n["x"', "multipart/form-data; boundary=b"]]) {
      expect(await check(action(body!, { "content-type": type! })), body).toEqual({ status: 400, reason: "has a multipart body that does not parse" });
    }
    const { body, headers } = multipart([["1_name", "x"], ["0", '[null,"$K1"]']]);
    expect(await check(action(body, headers))).toBeNull();
  });
});

describe("a form posted without JavaScript", () => {
  const post = (form: FormData | string, type?: string) => new Request("http://127.0.0.1:3000/setup/t", { method: "POST", body: form, headers: type ? { "content-type": type } : {} });

  it("is checked only for what Next.js decodes: its multipart body and the bound arguments of a $ACTION_REF_ field", async () => {
    const good = new FormData();
    good.append("$ACTION_REF_1", "");
    good.append("$ACTION_1:0", JSON.stringify({ id: "70288a770dd5cf5a4decfa02ad1efd17e88c5e1431", bound: "$@1" }));
    good.append("$ACTION_1:1", JSON.stringify(["setup-token"]));
    good.append("email", "a@example.test");
    expect(await check(post(good))).toBeNull();
    const byId = new FormData();
    byId.append("$ACTION_ID_60e65da4edd8588666e3ce89703b1abea32bdaf80b", "");
    expect(await check(post(byId))).toBeNull();
    // Not an action at all: Next.js answers it itself.
    const plain = new FormData();
    plain.append("name", "x");
    expect(await check(post(plain))).toBeNull();

    for (const bound of ["[", '"$Q2"', '{"a":1}']) {
      const bad = new FormData();
      bad.append("$ACTION_REF_1", "");
      bad.append("$ACTION_1:0", '{"id":"x","bound":"$@1"}');
      bad.append("$ACTION_1:1", bound);
      expect(await check(post(bad)), bound).not.toBeNull();
    }
    const noId = new FormData();
    noId.append("$ACTION_REF_1", "");
    noId.append("$ACTION_1:0", "[1]");
    expect(await check(post(noId))).toEqual({ status: 400, reason: "names its action in a form field that does not decode" });
    expect(await check(post("x", "multipart/form-data"))).toEqual({ status: 400, reason: "has a multipart body that does not parse" });
  });

  it("naming an action the build does not have, in a $ACTION_ID_ field or a $ACTION_REF_'s descriptor, is answered as Next.js answers it: 409, or 400 for an id of no valid shape", async () => {
    const known = new Set(["60e65da4edd8588666e3ce89703b1abea32bdaf80b", "70288a770dd5cf5a4decfa02ad1efd17e88c5e1431"]);
    const checkKnown = (request: Request) => malformedActionRequest(request, decoder, LIMIT, known);
    const byId = (id: string, before: string[] = []) => {
      const form = new FormData();
      for (const other of before) form.append(`$ACTION_ID_${other}`, "");
      form.append(`$ACTION_ID_${id}`, "");
      form.append("name", "x");
      return post(form);
    };
    const byRef = (id: string) => {
      const form = new FormData();
      form.append("$ACTION_REF_1", "");
      form.append("$ACTION_1:0", JSON.stringify({ id, bound: "$@1" }));
      form.append("$ACTION_1:1", JSON.stringify(["setup-token"]));
      return post(form);
    };
    expect(await checkKnown(byId("60e65da4edd8588666e3ce89703b1abea32bdaf80b"))).toBeNull();
    expect(await checkKnown(byRef("70288a770dd5cf5a4decfa02ad1efd17e88c5e1431"))).toBeNull();
    const unknown = "00" + "0".repeat(40);
    expect(await checkKnown(byId(unknown))).toEqual({ unknownAction: true, status: 409 });
    expect(await checkKnown(byRef(unknown))).toEqual({ unknownAction: true, status: 409 });
    // Every id a form names counts, not only the last.
    expect(await checkKnown(byId("60e65da4edd8588666e3ce89703b1abea32bdaf80b", [unknown]))).toEqual({ unknownAction: true, status: 409 });
    for (const id of ["x", "", "toString", "__proto__", "a".repeat(5_000)]) {
      expect(await checkKnown(byId(id)), id.slice(0, 10)).toEqual({ unknownAction: true, status: 400 });
      expect(await checkKnown(byRef(id)), id.slice(0, 10)).toEqual({ unknownAction: true, status: 400 });
    }
    // Without the build's list (none given), Next.js answers them, as before.
    expect(await check(byId(unknown))).toBeNull();
  });

  it("is not an action unless it is a POST with Next-Action or a multipart body, as Next.js decides", () => {
    const h = (o: Record<string, string>) => new Headers(o);
    expect(actionRequestShape("POST", h({ "next-action": "x" }))).toEqual({ fetchAction: true, formAction: false });
    expect(actionRequestShape("POST", h({ "content-type": "multipart/form-data; boundary=b" }))).toEqual({ fetchAction: false, formAction: true });
    for (const [method, headers] of [["PUT", { "next-action": "x" }], ["GET", { "next-action": "x" }], ["POST", { "content-type": "application/x-www-form-urlencoded" }], ["POST", { "content-type": "text/plain" }]] as const) {
      expect(actionRequestShape(method, h(headers)), `${method} ${JSON.stringify(headers)}`).toEqual({ fetchAction: false, formAction: false });
    }
  });
});
