import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as caRoute from "@/app/api/v1/ca/route";
import { createApiKey } from "@/lib/apikeys";
import type { Actor } from "@/lib/auth/actor";
import { ensureCertificateAuthority, getCaCertificatePem, rotateCertificateAuthority } from "@/lib/tls/ca-store";
import type { TestDatabase } from "../../support/database";
import { makeUser } from "../../support/factories";
import { establishTestKeys, type TestKeys } from "../../support/keys";
import { callRoute, routeDatabase } from "../../support/routes";

// Requests without a session cookie; API keys and the database are real (tests/support/no-session.ts).
vi.mock("@/lib/auth/current", () => import("../../support/no-session"));

describe("GET /api/v1/ca", () => {
  let t: TestDatabase;
  let admin: Actor;
  let auditorKey: string;
  let keys: TestKeys;
  const get = (authorization?: string) =>
    callRoute(caRoute.GET, "/api/v1/ca", { authorization });

  beforeAll(async () => {
    t = await routeDatabase();
    keys = await establishTestKeys(t.db, { signingKey: false });
    admin = (await makeUser(t.db, "admin")).actor;
    auditorKey = (await createApiKey(t.db, admin, { name: "auditor", role: "auditor" })).key;
  });
  afterAll(() => t.drop());

  it("answers 401 in the usual JSON shape without credentials or with a bad key, and never a certificate", async () => {
    for (const authorization of [undefined, "Bearer bk_nope", "Basic dXNlcjpwYXNz"]) {
      const res = await get(authorization);
      expect(res.status, authorization).toBe(401);
      expect(res.headers.get("content-type")).toMatch(/^application\/json/);
      expect(await res.json()).toMatchObject({ error: "unauthenticated" });
    }
  });

  it("answers 404 before a CA exists, and creates none (a GET changes nothing)", async () => {
    const res = await get(`Bearer ${auditorKey}`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: "not_found", message: expect.stringMatching(/bulkhead ca cert/) });
    expect(await t.db.certificateAuthority.count()).toBe(0);
    expect(await t.db.auditEvent.count({ where: { type: { startsWith: "ca." } } })).toBe(0);
  });

  it("serves the current certificate as a PEM download to any role with read, and the new one right after a rotation", async () => {
    await ensureCertificateAuthority(t.db, keys.workerKey);
    const res = await get(`Bearer ${auditorKey}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-pem-file");
    expect(res.headers.get("content-disposition")).toBe('attachment; filename="bulkhead-ca.pem"');
    expect(res.headers.get("cache-control")).toBe("no-store");
    const body = await res.text();
    const current = await getCaCertificatePem(t.db);
    expect(body.trimEnd()).toBe(current!.certPem.trimEnd());
    expect(body).toMatch(/^-----BEGIN CERTIFICATE-----\n[\s\S]+\n-----END CERTIFICATE-----\n$/);
    expect(body).not.toContain("PRIVATE");

    const rotated = await rotateCertificateAuthority(t.db, admin, keys.workerKey);
    expect((await (await get(`Bearer ${auditorKey}`)).text()).trimEnd()).toBe(rotated.certPem.trimEnd());
  });
});
