/**
 * A credential's header template may not set what the proxy strips from an agent's request: a
 * routing hint (`X-Original-URL`, `X-Host`, `Via`, any `X-Forwarded-*`), a method override in any
 * spelling a gateway reads alike (`X_HTTP_Method_Override`), Bulkhead's own grant header. A
 * template set `X_HTTP_Method_Override: DELETE` on a read-only task's GET, which the upstream ran.
 */
import { describe, expect, it } from "vitest";
import { parseHeaderTemplate } from "@/lib/vault/header-template";

const refused = (name: string) => {
  const r = parseHeaderTemplate(`${name}: {secret}`);
  return !r.ok && /may not set/.test(r.message);
};

describe("header names a credential may not set", () => {
  it("routing hints, overrides and framing, in every gateway spelling", () => {
    for (const name of [
      "X-Original-URL", "X-Rewrite-URL", "X-Host", "X-Forwarded-Prefix", "Via", "Bulkhead-Approval", "X-Envoy-Original-Path", "True-Client-IP",
      "X_HTTP_Method_Override", "X_Forwarded_Host", "X_Real_IP", "Transfer_Encoding", "Content_Length", "X-HTTP-Method-Override", "Host", "Proxy-Authorization",
    ]) {
      expect(refused(name), name).toBe(true);
    }
  });

  it("where credentials live is allowed (the control)", () => {
    for (const name of ["Authorization", "Cookie", "X-Api-Key", "Project-Access-Token", "PRIVATE-TOKEN", "X-Auth-Token"]) {
      expect(parseHeaderTemplate(`${name}: {secret}`).ok, name).toBe(true);
    }
  });
});
