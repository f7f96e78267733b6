import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as credentialsRoute from "@/app/api/v1/credentials/route";
import * as credentialRoute from "@/app/api/v1/credentials/[id]/route";
import * as rotateRoute from "@/app/api/v1/credentials/[id]/rotate/route";
import { createApiKey } from "@/lib/apikeys";
import type { Actor } from "@/lib/auth/actor";
import type { TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";
import { leaks, randomSecret } from "./secret-search";
import type { RouteHandler } from "../../support/no-session";
import { callRoute, routeDatabase } from "../../support/routes";

// Requests without a session cookie; API keys and the database are real (tests/support/no-session.ts).
vi.mock("@/lib/auth/current", () => import("../../support/no-session"));

/** The real credential route handlers, called in-process with API keys: no response carries a secret. */
describe("credential route handlers", () => {
  let t: TestDatabase;
  let admin: Actor;
  let adminKey: string;
  let auditorKey: string;
  const secrets: string[] = [];
  const bodies: string[] = [];
  const call = async <P,>(handler: RouteHandler<P>, method: string, path: string, key: string, body?: unknown, params = {} as P) => {
    const res = await callRoute(handler, path, { method, key, body: body === undefined ? undefined : JSON.stringify(body), params });
    const text = await res.text();
    bodies.push(text);
    return { status: res.status, text, json: JSON.parse(text) as Record<string, unknown> };
  };
  const newSecret = () => {
    const s = randomSecret();
    secrets.push(s);
    return s;
  };

  beforeAll(async () => {
    t = await routeDatabase({ keys: true }); // the dashboard's own keys, as the launcher hands them to it
    admin = (await makeUser(t.db, "admin")).actor;
    adminKey = (await createApiKey(t.db, admin, { name: "admin", role: "admin" })).key;
    auditorKey = (await createApiKey(t.db, admin, { name: "auditor", role: "auditor" })).key;
  });
  afterAll(() => t.drop());

  it("adds, lists, rotates and deletes without ever returning the secret", async () => {
    const created = await call(credentialsRoute.POST, "POST", "/api/v1/credentials", adminKey, {
      name: unique("gh"),
      host: "api.github.com",
      environments: "production",
      headerTemplate: "Authorization: Bearer {secret}",
      secret: newSecret(),
    });
    expect(created.status).toBe(201);
    const credential = created.json.credential as { id: string; secret: string; service: string };
    expect(credential).toMatchObject({ secret: "••••", service: "https://api.github.com:443", serviceId: "github", environments: ["production"] });

    const listed = await call(credentialsRoute.GET, "GET", "/api/v1/credentials", auditorKey);
    expect(listed.status).toBe(200);
    expect(listed.json.credentials).toEqual([expect.objectContaining({ id: credential.id, secret: "••••" })]);

    const rotated = await call(rotateRoute.POST, "POST", `/api/v1/credentials/${credential.id}/rotate`, adminKey, { secret: newSecret() }, { id: credential.id });
    expect(rotated.status).toBe(200);

    const bad = await call(rotateRoute.POST, "POST", `/api/v1/credentials/${credential.id}/rotate`, adminKey, { secret: `${newSecret()}\r\nX-Evil: 1` }, { id: credential.id });
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ error: "invalid_input", issues: [{ path: "secret", message: expect.stringMatching(/line breaks/) }] });

    const badTemplate = await call(credentialsRoute.POST, "POST", "/api/v1/credentials", adminKey, {
      name: unique("x"),
      host: "api.example.test",
      environments: "*",
      headerTemplate: "Authorization: Bearer {secret}\r\nHost: 169.254.169.254",
      secret: newSecret(),
    });
    expect(badTemplate.status).toBe(400);

    const deleted = await call(credentialRoute.DELETE, "DELETE", `/api/v1/credentials/${credential.id}`, adminKey, undefined, { id: credential.id });
    expect(deleted.status).toBe(200);
    expect(await t.db.credential.count()).toBe(0);

    for (const s of secrets) expect(leaks(bodies.join("\n"), s), "a response contained a secret").toEqual([]);
    const audit = await t.db.$queryRaw<Array<{ json: string }>>`SELECT row_to_json(a)::text AS json FROM audit_events a`;
    for (const s of secrets) expect(leaks(audit.map((a) => a.json).join("\n"), s)).toEqual([]);
  });

  it("gives an auditor key 403 on every change, and nothing changes", async () => {
    const id = (
      await call(credentialsRoute.POST, "POST", "/api/v1/credentials", adminKey, {
        name: unique("kept"),
        host: "kept.example.test",
        environments: "*",
        headerTemplate: "X-Key: {secret}",
        secret: newSecret(),
      })
    ).json.credential as { id: string };
    const before = await t.db.credential.findMany({ orderBy: { id: "asc" } });
    const attempts = [
      await call(credentialsRoute.POST, "POST", "/api/v1/credentials", auditorKey, { name: unique("no"), host: "no.example.test", environments: "*", headerTemplate: "X-Key: {secret}", secret: newSecret() }),
      await call(rotateRoute.POST, "POST", `/api/v1/credentials/${id.id}/rotate`, auditorKey, { secret: newSecret() }, { id: id.id }),
      await call(credentialRoute.DELETE, "DELETE", `/api/v1/credentials/${id.id}`, auditorKey, undefined, { id: id.id }),
    ];
    for (const a of attempts) {
      expect(a.status).toBe(403);
      expect(a.json).toMatchObject({ error: "forbidden" });
    }
    expect(await t.db.credential.findMany({ orderBy: { id: "asc" } })).toEqual(before);
  });

  it("exposes no route that returns a secret: nothing under app/ can decrypt", async () => {
    const { readdirSync, readFileSync, statSync } = await import("node:fs");
    const path = await import("node:path");
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const p = path.join(dir, name);
        if (statSync(p).isDirectory()) walk(p);
        else if (/\.tsx?$/.test(name)) files.push(p);
      }
    };
    walk(path.resolve("app"));
    walk(path.resolve("components"));
    for (const file of files) {
      const text = readFileSync(file, "utf8");
      expect(text, file).not.toMatch(/loadCredentialsForInjection|openSecret|load-for-injection|secretSealed/);
    }
  });
});
