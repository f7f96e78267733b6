import { createRequire } from "node:module";
import path from "node:path";
import type { APIRequestContext } from "@playwright/test";
import { actionId } from "./support/actions";
import { expect, signInViaApi, test } from "./support/fixtures";

/**
 * Server action requests that no page of the dashboard sends, from the dashboard's own origin
 * (a cross-site one is refused with 403 before anything else, tests/e2e/server-actions.spec.ts),
 * signed out and signed in. Next.js decodes an action's arguments before any of Bulkhead's code
 * runs, and a body its decoder threw on was a 500 with an error digest. proxy.ts now decodes it
 * first (lib/http/action-request.ts): a 400 with the reason, 413 when it is over the form limit,
 * and the dashboard goes on answering. Every other odd request around actions and the router's
 * headers must not be a 5xx either.
 */
const requireFromNext = createRequire(path.resolve("node_modules/next/package.json"));
const { encodeReply } = requireFromNext("next/dist/compiled/react-server-dom-webpack/client.node") as {
  encodeReply(value: unknown[]): Promise<string | FormData>;
};

/** The pages the actions are posted to: sign-in and setup are open to everyone. */
const TARGETS = [
  ["/login", "signInWithPassword"],
  ["/setup/not-a-valid-setup-token", "completeSetupAction"],
  ["/agents/new", "registerAgentAction"],
] as const;

const deep = (n: number) => "[".repeat(n) + "]".repeat(n);

/** Text bodies React's decoder throws on (or Next.js refuses to call an action with): each a 400. */
const UNDECODABLE_TEXT: Array<[string, string]> = [
  ["a Map whose part was never sent", '["$Q1"]'],
  ["a Set whose part was never sent", '["$W1"]'],
  ["an iterator whose part was never sent", '["$i1"]'],
  ["a blob that was never sent", '["$B1"]'],
  ["a typed array that was never sent", '["$AB1"]'],
  ["a path into a part that was never sent", '["$1:a:b"]'],
  ["a server function reference", '["$h1"]'],
  ["a server function reference from a part", '["$F1"]'],
  ["a thenable whose then is a reference", '[{"then":"$F1"}]'],
  ["a BigInt that is not a number", '["$nabc"]'],
  ["an unknown tag", '["$Z"]'],
  ["a symbol", '["$Sfoo"]'],
  ["an eval tag", '["$Eundefined"]'],
  ["an open bracket", "["],
  ["an unterminated array", '["a",'],
  ["an empty body", ""],
  ["text that is not JSON", "garbage"],
  ["bytes that are not UTF-8", "\xff\xfe"],
  ["arguments that are null", "null"],
  ["arguments that are a number", "1"],
  ["arguments that are a string", '"x"'],
  ["arguments that are an object", '{"a":1}'],
  ["5,000 nested arrays", deep(5_000)],
  ["100,000 nested arrays", deep(100_000)],
  ["5,000 arguments", JSON.stringify(Array(5_000).fill(1))],
];

// A request that reaches the sign-in action counts against the loopback address every browser test signs in from.
test.afterEach(async ({ db }) => {
  await db.signInThrottle.deleteMany({ where: { key: { startsWith: "address:" } } });
});

function multipart(parts: Array<[string, string]>, boundary = "----bulkheadtest"): { body: string; type: string } {
  const body = parts.map(([name, value]) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`).join("") + `--${boundary}--\r\n`;
  return { body, type: `multipart/form-data; boundary=${boundary}` };
}

/** Multipart bodies (content type, body) that do not parse or whose parts do not decode: each a 400. */
const UNDECODABLE_MULTIPART: Array<[string, { body: string; type: string }]> = [
  ["a Map in a part that does not exist", multipart([["0", '["$Q3"]']])],
  ["no root part", multipart([["1_name", "x"]])],
  ["a root part that is not JSON", multipart([["0", "["]])],
  ["a blob part that does not exist", multipart([["0", '["$B9"]']])],
  ["a server function reference", multipart([["1", '{"id":"x","bound":null}'], ["0", '["$F1"]']])],
  ["a boundary the body does not use", { body: "--nope\r\n", type: "multipart/form-data; boundary=zzz" }],
  ["no boundary", { body: "x", type: "multipart/form-data" }],
  ["a body cut short", { body: '--b\r\nContent-Disposition: form-data; name="0"\r\n\r\n["x"', type: "multipart/form-data; boundary=b" }],
];

/** Other content types a fetch action's body may claim: Next.js reads them as text. */
const OTHER_TYPES = ["application/json", "application/octet-stream", "text/html", "multipart/mixed; boundary=x", "Multipart/Form-Data; boundary=x"];

/**
 * Forms posted without a Next-Action header (as without JavaScript) that Next.js decoded and threw
 * on. They name an action the build has (the setup form's, which has a bound argument): one it does
 * not have is refused as unknown before anything is decoded (tests/e2e/request-logs.spec.ts).
 */
const undecodableFormPosts = (): Array<[string, { body: string; type: string }]> => {
  const id = actionId("completeSetupAction");
  return [
    ["a body cut short", { body: `--b\r\nContent-Disposition: form-data; name="$ACTION_ID_${id}"\r\n\r\n`, type: "multipart/form-data; boundary=b" }],
    ["no boundary", { body: "x", type: "multipart/form-data" }],
    ["bound arguments that do not decode", multipart([["$ACTION_REF_1", ""], ["$ACTION_1:0", JSON.stringify({ id, bound: "$@1" })], ["$ACTION_1:1", "["]])],
    ["bound arguments whose part does not exist", multipart([["$ACTION_REF_1", ""], ["$ACTION_1:0", JSON.stringify({ id, bound: "$Q2" })]])],
  ];
};

async function clients(playwright: import("@playwright/test").PlaywrightWorkerArgs["playwright"], baseURL: string, api: APIRequestContext, createUser: (role: "admin") => Promise<{ email: string; password: string }>) {
  const origin = new URL(baseURL).origin;
  const signedOut = await playwright.request.newContext({ baseURL, extraHTTPHeaders: { origin } });
  const admin = await createUser("admin");
  await signInViaApi(api, admin.email, admin.password);
  return [["signed out", signedOut], ["signed in", api]] as const;
}

test("a server action request whose body does not decode is a 400 with the reason, signed out or in; the dashboard goes on answering", async ({ playwright, api, createUser }, testInfo) => {
  test.setTimeout(180_000);
  const baseURL = testInfo.project.use.baseURL!;
  const contexts = await clients(playwright, baseURL, api, createUser);
  const refused = async (res: import("@playwright/test").APIResponse, what: string, status = 400) => {
    expect(res.status(), what).toBe(status);
    expect(res.headers()["content-type"], what).toContain("text/plain");
    expect(res.headers()["cache-control"], what).toBe("no-store");
    // Too large: refused by the dashboard's server before Next.js copies the body (tests/e2e/body-limits.spec.ts).
    const text = status === 413 ? /^Payload too large: .+; nothing was read or changed\.\n$/ : /^Bad request: this server action request .+, so nothing was run or changed\.\n$/;
    expect(await res.text(), what).toMatch(text);
  };
  for (const [who, client] of contexts) {
    for (const [page, name] of TARGETS) {
      const headers = { "next-action": actionId(name), accept: "text/x-component" };
      for (const [what, body] of UNDECODABLE_TEXT) {
        const res = await client.post(page, { headers: { ...headers, "content-type": "text/plain;charset=UTF-8" }, data: Buffer.from(body, "latin1"), maxRedirects: 0 });
        await refused(res, `${who}: ${name} on ${page} with ${what}`);
      }
      for (const type of OTHER_TYPES) {
        const res = await client.post(page, { headers: { ...headers, "content-type": type }, data: '["$Q1"]', maxRedirects: 0 });
        await refused(res, `${who}: ${name} on ${page} with ["$Q1"] as ${type}`);
      }
      await refused(await client.post(page, { headers, maxRedirects: 0 }), `${who}: ${name} on ${page} without a body`);
      for (const [what, { body, type }] of UNDECODABLE_MULTIPART) {
        const res = await client.post(page, { headers: { ...headers, "content-type": type }, data: body, maxRedirects: 0 });
        await refused(res, `${who}: ${name} on ${page} with a multipart body: ${what}`);
      }
      for (const [what, { body, type }] of undecodableFormPosts()) {
        const res = await client.post(page, { headers: { "content-type": type }, data: body, maxRedirects: 0 });
        await refused(res, `${who}: a form post to ${page} without Next-Action: ${what}`);
      }
      // Over the form limit (lib/http/form-limit.ts): Next.js's own refusal of it was a 500 too;
      // now it never reaches Next.js.
      const huge = await client.post(page, { headers: { ...headers, "content-type": "text/plain;charset=UTF-8" }, data: JSON.stringify(["x".repeat(2 * 1024 * 1024)]), maxRedirects: 0 });
      await refused(huge, `${who}: ${name} on ${page} with 2 MiB of arguments`, 413);
    }
    const after = who === "signed in" ? "/agents" : "/login";
    expect((await client.get(after, { maxRedirects: 0 })).status(), `${who}: ${after} afterwards`).toBe(200);
  }
  await contexts[0][1].dispose();
});

test("other odd requests around actions and client navigation are never a 5xx", async ({ playwright, api, createUser }, testInfo) => {
  test.setTimeout(180_000);
  const baseURL = testInfo.project.use.baseURL!;
  const contexts = await clients(playwright, baseURL, api, createUser);
  const problems: string[] = [];
  const expectAnswered = async (res: import("@playwright/test").APIResponse, what: string) => {
    if (res.status() >= 500) problems.push(`${what}: ${res.status()}`);
    await res.body();
  };
  /** A client navigation's request: Next.js first sends it to the same URL with its `_rsc` cache key. */
  const navigate = async (client: APIRequestContext, url: string, headers: Record<string, string>) => {
    let res = await client.get(url, { headers, maxRedirects: 0 });
    const location = res.headers()["location"] ?? "";
    if (res.status() === 307 && location.includes("_rsc=")) res = await client.get(location, { headers, maxRedirects: 0 });
    return res;
  };
  const unknownIds = ["00" + "a".repeat(40), "7f" + "0".repeat(40), "x", "", "toString", "__proto__", "a".repeat(5_000)];
  for (const [who, client] of contexts) {
    for (const [page, name] of [...TARGETS, ["/", "registerAgentAction"], ["/no/such/page", "registerAgentAction"], ["/tasks/00000000-0000-4000-8000-000000000000", "endTaskAction"]] as const) {
      const id = actionId(name);
      // Valid bodies of the wrong shape reach the action, which answers them (server-actions.spec.ts);
      // not the sign-in action, where each would count against this address's sign-in attempts.
      for (const body of name === "signInWithPassword" ? [] : ['["$@1"]', '["$K1"]', '["$T"]', '["$Dnot a date"]', '["$R1"]', '["$X1"]', '["$0"]', "[]", '[{"__proto__":{"x":1}}]', '["\\u0000"]', '["\\ud800"]']) {
        await expectAnswered(await client.post(page, { headers: { "next-action": id, "content-type": "text/plain" }, data: body, maxRedirects: 0 }), `${who}: ${name} on ${page} with ${body}`);
      }
      for (const unknown of unknownIds) {
        await expectAnswered(await client.post(page, { headers: { "next-action": unknown, "content-type": "text/plain" }, data: "[", maxRedirects: 0 }), `${who}: unknown action ${unknown.slice(0, 20)} on ${page}`);
        const { body, type } = multipart([["1", "x"], ["0", '["$K1"]']]);
        await expectAnswered(await client.post(page, { headers: { "next-action": unknown, "content-type": type }, data: body, maxRedirects: 0 }), `${who}: unknown action ${unknown.slice(0, 20)} on ${page}, multipart`);
      }
      const form = multipart([["$ACTION_ID_" + "0".repeat(42), ""]]);
      await expectAnswered(await client.post(page, { headers: { "content-type": form.type }, data: form.body, maxRedirects: 0 }), `${who}: a form post naming an unknown action on ${page}`);
      await expectAnswered(await client.post(page, { headers: { "content-type": "application/x-www-form-urlencoded" }, data: "$ACTION_ID_x=1&a=%ff", maxRedirects: 0 }), `${who}: urlencoded form post to ${page}`);
      await expectAnswered(await client.post(page, { headers: { "next-action": id, "content-type": "application/x-www-form-urlencoded" }, data: "a=%ff&b", maxRedirects: 0 }), `${who}: urlencoded action on ${page}`);
      await expectAnswered(await client.post(page, { headers: { "content-type": "text/plain" }, data: "[", maxRedirects: 0 }), `${who}: a text POST without Next-Action to ${page}`);
      for (const method of ["GET", "HEAD"]) {
        await expectAnswered(await client.fetch(page, { method, headers: { "next-action": id }, maxRedirects: 0 }), `${who}: ${method} ${page} with Next-Action`);
      }
      for (const method of ["PUT", "DELETE", "PATCH", "OPTIONS"]) {
        await expectAnswered(await client.fetch(page, { method, maxRedirects: 0 }), `${who}: ${method} ${page}`);
        await expectAnswered(await client.fetch(page, { method, headers: { "next-action": id, "content-type": "text/plain" }, data: '["$Q1"]', maxRedirects: 0 }), `${who}: ${method} ${page} with Next-Action and ["$Q1"]`);
      }
      const routerHeaders: Array<Record<string, string>> = [
        { rsc: "1" }, { rsc: "0" }, { rsc: "garbage" },
        ...["1", "2", "x"].map((v) => ({ rsc: "1", "next-router-prefetch": v })),
        ...["/_tree", "garbage", "/%ff", "/" + "a".repeat(5_000), "", "/_full", "/__PAGE__"].map((v) => ({ rsc: "1", "next-router-prefetch": "1", "next-router-segment-prefetch": v })),
        ...["%ff", "/agents", "garbage", "//evil.example", "/" + "a".repeat(5_000)].map((v) => ({ rsc: "1", "next-url": v })),
        { rsc: "1", "next-router-stale-time": "x" }, { rsc: "1", "next-hmr-refresh": "1" },
      ];
      for (const headers of routerHeaders) await expectAnswered(await navigate(client, page, headers), `${who}: ${page} with ${JSON.stringify(headers).slice(0, 120)}`);
      for (const query of ["_rsc=", "_rsc=%ff", "_rsc=garbage", "_rsc=" + "a".repeat(5_000), "__nextDataReq=1", "_next_postponed=%ff"]) {
        await expectAnswered(await client.get(`${page}?${query}`, { headers: { rsc: "1" }, maxRedirects: 0 }), `${who}: ${page}?${query.slice(0, 30)} with RSC: 1`);
        await expectAnswered(await client.get(`${page}?${query}`, { maxRedirects: 0 }), `${who}: ${page}?${query.slice(0, 30)}`);
      }
    }
    for (const route of ["/api/v1/agents", "/api/v1/me", "/api/auth/session", "/api/no/such/endpoint"]) {
      await expectAnswered(await client.get(route, { headers: { "next-action": actionId("registerAgentAction") }, maxRedirects: 0 }), `${who}: GET ${route} with Next-Action`);
      await expectAnswered(await client.post(route, { headers: { "next-action": actionId("registerAgentAction"), "content-type": "text/plain" }, data: '["$Q1"]', maxRedirects: 0 }), `${who}: POST ${route} with Next-Action and ["$Q1"]`);
    }
  }
  expect(problems, "requests answered with a 5xx").toEqual([]);
  expect((await contexts[0][1].get("/login")).status()).toBe(200);
  expect((await api.get("/agents")).status()).toBe(200);
  await contexts[0][1].dispose();
});

test("the requests the dashboard's pages send still reach their action, by fetch and as a form posted without JavaScript", async ({ api, createUser }) => {
  const admin = await createUser("admin");
  await signInViaApi(api, admin.email, admin.password);
  // The policy simulator changes nothing: a real call that answers its result.
  const simulate = actionId("simulateAction");
  const form = new FormData();
  for (const [k, v] of Object.entries({ policyYaml: "rules: []\n", method: "GET", url: "https://api.github.com/repos/a/b", body: "", contentType: "" })) form.append(k, v);
  for (const args of [[null, form], []] as unknown[][]) {
    const body = await encodeReply(args);
    const headers = { "next-action": simulate, accept: "text/x-component" };
    const res = typeof body === "string" ? await api.post("/tasks/new", { headers: { ...headers, "content-type": "text/plain;charset=UTF-8" }, data: body }) : await api.post("/tasks/new", { headers, multipart: body });
    expect(res.status()).toBe(200);
    expect(await res.text()).toContain(args.length ? '{"ok":true' : '{"ok":false');
  }
  // A form posted without JavaScript names its action in a field; one with bound arguments (the
  // setup form: its link's token) encodes them in `$ACTION_<n>:` fields.
  const plain = await api.post("/tasks/new", { multipart: { [`$ACTION_ID_${simulate}`]: "", policyYaml: "rules: []\n", method: "GET", url: "https://api.github.com/repos/a/b" }, maxRedirects: 0 });
  expect(plain.status()).toBeLessThan(400);
  const setup = actionId("completeSetupAction");
  const bound = await api.post("/setup/not-a-valid-setup-token", {
    multipart: { $ACTION_REF_1: "", "$ACTION_1:0": JSON.stringify({ id: setup, bound: "$@1" }), "$ACTION_1:1": JSON.stringify(["not-a-valid-setup-token"]), $ACTION_KEY: "k1", email: "a@example.test", password: "a long enough password", confirm: "a long enough password" },
    maxRedirects: 0,
  });
  expect(bound.status()).toBeLessThan(400);
  expect(await bound.text()).not.toContain("Bad request");
});
