import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { viaProxy } from "../../support/proxy-client";
import { startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

/**
 * Through the running proxy: spellings that a server routes like the held or denied request
 * (a trailing slash, another case, `;parameters`, a format suffix, trailing dots or spaces, a
 * method override in the query, a multipart
 * part or a JSON key, a GraphQL endpoint's path spelled otherwise) are judged as that request,
 * or refused; never forwarded as the laxer one.
 */
describe("spellings of a request are judged as the request a server would run", () => {
  let h: ProxyHarness;
  let up: Upstream;
  let token: string;
  let origin: string;

  beforeAll(async () => {
    up = await startHttpUpstream();
    h = await startProxyHarness();
    await h.addService({
      id: "api",
      hosts: ["api.test"],
      scheme: "http",
      ports: [up.port],
      protocol: "rest",
      rest: {
        routes: [
          { method: "DELETE", path: "/volumes/{id}", operation: "volumes.delete", effect: "irreversible", resource: "{id}" },
          { method: "POST", path: "/volumes/{id}/restore", operation: "volumes.restore", effect: "irreversible", resource: "{id}" },
        ],
      },
      graphql: { paths: ["/graphql"] },
      proxy: { internalAddresses: ["127.0.0.1/32"] },
    });
    // Everything short of irreversible is allowed: the irreversible delete is denied outright.
    ({ token } = await h.newTask("unlisted: deny\nrules:\n  - service: api\n    effects: [read, write, destructive]\n", { scope: "api:*:irreversible" }));
    origin = `http://api.test:${up.port}`;
  });
  afterAll(async () => {
    await h.close();
    await up.close();
  });

  const send = (path: string, options: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}) => viaProxy(h.proxyPort, `${origin}${path}`, { token, ...options });

  it("the control: the route itself is refused, another volume path is forwarded", async () => {
    expect((await send("/volumes/v1", { method: "DELETE" })).status).toBe(403);
    expect((await send("/volumes/v1/restore", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).status).toBe(403);
    expect((await send("/volumes/v1", { method: "GET" })).status).toBe(200);
    expect((await send("/volumes/v1/snapshot.json", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).status).toBe(200);
  });

  it.each(["/volumes/v1/", "/Volumes/v1", "/VOLUMES/v1", "/volumes;a=b/v1", "/volumes/v1;c=d/"])("DELETE %s is the irreversible delete", async (path) => {
    const before = up.hits.length;
    const r = await send(path, { method: "DELETE" });
    expect(r.status, r.text).toBe(403);
    expect(up.hits.length).toBe(before);
  });

  it.each(["/%2576olumes/v1", "/volumes%252Fv1", "/x/%252e%252e/volumes/v1", "/%25%37%36olumes/v1"])("DELETE %s (double-encoded: the delete on a server that decodes twice) is refused", async (path) => {
    const before = up.hits.length;
    const r = await send(path, { method: "DELETE" });
    expect([r.status, r.json?.error], r.text).toEqual([400, "double_encoding"]);
    expect(up.hits.length).toBe(before);
  });

  it.each(["/volumes/v1/restore.json", "/volumes/v1/Restore.XML/", "/volumes/v1/restore.", "/volumes/v1/restore%20"])(
    "POST %s (a format suffix Rails drops, trailing dots or spaces IIS drops) is the irreversible restore",
    async (path) => {
      const before = up.hits.length;
      const r = await send(path, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
      expect(r.status, r.text).toBe(403);
      expect(up.hits.length).toBe(before);
    },
  );

  it.each([
    ["a query parameter", "/volumes/v1?_method=DELETE", {}, undefined],
    ["an encoded query parameter", "/volumes/v1?%5Fmethod=DELETE", {}, undefined],
    ["an encoded form field", "/volumes/v1", { "content-type": "application/x-www-form-urlencoded" }, "%5Fmethod=DELETE"],
    ["a form in another charset", "/volumes/v1", { "content-type": "application/x-www-form-urlencoded; charset=iso-8859-1" }, "_method=DELETE"],
    ["a multipart part", "/volumes/v1", { "content-type": "multipart/form-data; boundary=XyZ" }, '--XyZ\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n--XyZ--\r\n'],
    ["a JSON key", "/volumes/v1", { "content-type": "application/json" }, '{"_method":"DELETE"}'],
    // Laravel reads any Content-Type containing "/json" or "+json" as JSON (Request::isJson()).
    ["a JSON key labelled text/json", "/volumes/v1", { "content-type": "text/json" }, '{"_method":"DELETE"}'],
    ["a JSON key labelled application/x-json", "/volumes/v1", { "content-type": "application/x-json; charset=utf-8" }, '{"_method":"DELETE"}'],
    // Express's JSON parser decodes UTF-16 when the charset says so.
    ["a JSON key in UTF-16", "/volumes/v1", { "content-type": "application/json; charset=utf-16le" }, Buffer.from('{"_method":"DELETE"}', "utf16le")],
  ])("a POST overridden to DELETE by %s is not forwarded", async (_name, path, headers, body) => {
    const before = up.hits.length;
    const r = await send(path, { method: "POST", headers, body: body ?? "" });
    expect([400, 403], r.text).toContain(r.status);
    expect(up.hits.length).toBe(before);
  });

  it.each(["/graphql/", "/GraphQL", "/graphql;v=1"])("a mutation sent to %s is not forwarded as a REST write", async (path) => {
    const before = up.hits.length;
    const r = await send(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: "mutation { nukeAll }" }) });
    expect([400, 403], r.text).toContain(r.status);
    expect(up.hits.length).toBe(before);
  });

  it("a large SQL-over-HTTP-sized body on a REST path is still a plain write (the SQL bound is only for SQL endpoints)", async () => {
    const r = await send("/notes", { method: "POST", headers: { "content-type": "text/plain" }, body: "select 1;".repeat(20_000) });
    expect(r.status).toBe(200);
  });
});
