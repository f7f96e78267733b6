import { describe, expect, it } from "vitest";
// @ts-expect-error: a plain .mjs module of the dashboard's server (scripts/app-server.mjs), without types
import { malformedPath, servedMethod } from "../../../scripts/request-guard.mjs";

const check = malformedPath as (url: string) => string | null;
const served = servedMethod as (method: string | undefined) => boolean;

describe("the dashboard server's malformed-path guard", () => {
  it("refuses every path segment whose percent-encoding does not decode", () => {
    for (const url of ["/agents/%ff", "/api/v1/tasks/%E0%A4%A", "/api/v1/agents/%", "/audit/%c0%af", "/x/%zz", "/tasks/ok/%ff%fe/report", "/setup/%80?next=/", "/api/auth/%ED%A0%80"]) {
      expect(check(url), url).toMatch(/not valid percent-encoding/);
    }
  });

  it("lets through what decodes, and never looks at the query", () => {
    for (const url of ["/", "/agents", "/agents/%25", "/tasks/a%20b", "/api/v1/audit/12", "/agents/%E2%9C%93", "/audit?q=%ff", "/api/v1/audit?q=%", "*", "/a/%2F/b"]) {
      expect(check(url), url).toBeNull();
    }
  });

  it("serves the methods pages and route handlers use, and nothing else", () => {
    for (const m of ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]) expect(served(m), m).toBe(true);
    for (const m of ["TRACE", "TRACK", "CONNECT", "PROPFIND", "PURGE", "QUERY", "get", "", undefined]) expect(served(m), String(m)).toBe(false);
  });
});
