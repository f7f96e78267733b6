/**
 * What a credential serves (service and environments), through the domain functions, the route
 * handler and the CLI, against the real database: declared when it is added, required, checked
 * against the service its host belongs to, changeable only by an admin, audited; credentials from
 * before bindings existed serve nothing until bound.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { stringify } from "yaml";
import * as bindingRoute from "@/app/api/v1/credentials/[id]/binding/route";
import { createApiKey } from "@/lib/apikeys";
import type { Actor } from "@/lib/auth/actor";
import { credentialCommand } from "@/cli/commands/credential";
import { CliError, type CliContext } from "@/cli/context";
import { parseScope, type TaskScope } from "@/lib/identity/scope";
import { addCredential, bindCredential, listCredentials, loadCredentialsForInjection, selectCredential } from "@/lib/vault";
import { createTestDatabase, databaseEnv, type TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";
import type { TestKeys } from "../../support/keys";
import { callRoute, routeDatabase, type RouteDatabase } from "../../support/routes";

/** A scope that allows everything, so only the binding decides. */
const EVERYTHING = (parseScope("*:*:irreversible") as { ok: true; scope: TaskScope }).scope;

// Requests without a session cookie; API keys and the database are real (tests/support/no-session.ts).
vi.mock("@/lib/auth/current", () => import("../../support/no-session"));

describe("credential bindings", () => {
  let t: RouteDatabase;
  let keys: TestKeys;
  let admin: Actor;
  let auditor: Actor;
  const add = (over: Record<string, unknown> = {}) =>
    addCredential(t.db, admin, keys.workerKey, { name: unique("c"), host: `${unique("h")}.example.test`, headerTemplate: "X-Key: {secret}", secret: "s3cret-value", environments: "staging", ...over } as never);

  beforeAll(async () => {
    t = await routeDatabase({ keys: true });
    keys = t.keys!;
    admin = (await makeUser(t.db, "admin")).actor;
    auditor = (await makeUser(t.db, "auditor")).actor;
    await t.db.service.create({ data: { name: "billing", descriptorYaml: stringify({ id: "billing", hosts: ["billing.example.test"], protocol: "rest", ports: [8443] }) } });
  });
  afterAll(() => t.drop());

  it("requires the environments, and stores them canonical with the host's service", async () => {
    await expect(add({ environments: undefined })).rejects.toThrow(/List the environments/);
    await expect(add({ environments: "" })).rejects.toThrow(/List the environments/);
    await expect(add({ environments: " , " })).rejects.toThrow(/List the environments/);
    await expect(add({ environments: "staging, *" })).rejects.toThrow(/\* already means every environment/);
    await expect(add({ environments: "stag ing/x" })).rejects.toThrow(/not an environment name/);
    const c = await add({ environments: "Staging, development staging" });
    expect(c).toMatchObject({ serviceId: "unknown", environments: ["development", "staging"] });
    const gh = await add({ host: "api.github.com", environments: ["production"] });
    expect(gh).toMatchObject({ serviceId: "github", environments: ["production"] });
    const billing = await add({ host: "billing.example.test", port: 8443, serviceId: "BILLING", environments: "*" });
    expect(billing).toMatchObject({ serviceId: "billing", environments: ["*"] });
    const added = await t.db.auditEvent.findFirstOrThrow({ where: { type: "credential.added" }, orderBy: { id: "desc" } });
    expect(added.data).toMatchObject({ serviceId: "billing", environments: ["*"] });
  });

  it("refuses a service the host does not belong to, and an endpoint the proxy refuses", async () => {
    await expect(add({ host: "api.github.com", serviceId: "railway" })).rejects.toThrow(/belongs to the service github, not railway/);
    await expect(add({ serviceId: "github" })).rejects.toThrow(/belongs to the service unknown, not github/);
    await expect(add({ host: "billing.example.test", port: 443 })).rejects.toThrow(/belongs to the service billing, but port 443 is not a port of service billing/);
    await expect(add({ serviceId: "not a service" })).rejects.toThrow(/service id/);
  });

  it("binding changes only service and environments, is audited with before and after, and is for admins only", async () => {
    const c = await add({ environments: "staging" });
    const sealed = (await t.db.credential.findUniqueOrThrow({ where: { id: c.id } })).secretSealed;
    await expect(bindCredential(t.db, auditor, c.id, { environments: "production" })).rejects.toMatchObject({ code: "FORBIDDEN" });
    await expect(bindCredential(t.db, admin, c.id, { environments: "" })).rejects.toThrow(/List the environments/);
    await expect(bindCredential(t.db, admin, c.id, { serviceId: "github", environments: "production" })).rejects.toThrow(/belongs to the service unknown/);
    await expect(bindCredential(t.db, admin, "00000000-0000-4000-8000-000000000000", { environments: "x" })).rejects.toMatchObject({ code: "NOT_FOUND" });
    // Where a secret is injected is decided with a recent sign-in, as adding it was.
    const stale = { ...(admin as Extract<typeof admin, { kind: "user" }>), authenticatedAt: Date.now() - 3600_000 };
    await expect(bindCredential(t.db, stale, c.id, { environments: "*" })).rejects.toMatchObject({ code: "STEP_UP_REQUIRED" });
    expect((await t.db.credential.findUniqueOrThrow({ where: { id: c.id } })).environments).toBe("staging");
    const bound = await bindCredential(t.db, admin, c.id, { environments: "production" });
    expect(bound).toMatchObject({ serviceId: "unknown", environments: ["production"] });
    expect((await t.db.credential.findUniqueOrThrow({ where: { id: c.id } })).secretSealed).toBe(sealed);
    const event = await t.db.auditEvent.findFirstOrThrow({ where: { type: "credential.bound" }, orderBy: { id: "desc" } });
    expect(event.data).toMatchObject({ credentialId: c.id, before: { serviceId: "unknown", environments: ["staging"] }, after: { serviceId: "unknown", environments: ["production"] } });
  });

  it("a credential from before bindings existed serves nothing: listed with the reason, opened by the worker, never selected", async () => {
    const c = await add();
    await t.db.$executeRaw`UPDATE credentials SET service_id = NULL, environments = '' WHERE id = ${c.id}::uuid`;
    const listed = (await listCredentials(t.db, admin)).find((x) => x.id === c.id)!;
    expect(listed).toMatchObject({ serviceId: null, environments: [] });
    expect(listed.problem).toMatch(/unbound: it serves nothing/);
    const loaded = (await loadCredentialsForInjection(t.db, keys.workerKey)).get(`https://${c.host}:443`)!;
    expect(loaded).toMatchObject({ serviceId: null, environments: [], headerValue: "s3cret-value" });
    const action = { service: "unknown", environment: "production", resource: "-", operation: "GET", effect: "read" as const };
    expect(selectCredential(loaded, [action], EVERYTHING)).toEqual({ credential: null, withheld: expect.stringMatching(/serves nothing \(unbound\)/) });
    await bindCredential(t.db, admin, c.id, { environments: "staging" });
    expect((await loadCredentialsForInjection(t.db, keys.workerKey)).get(`https://${c.host}:443`)).toMatchObject({ serviceId: "unknown", environments: ["staging"] });
    // No inventory entry places anything in staging yet: it is never injected, and the list says so.
    expect((await listCredentials(t.db, admin)).find((x) => x.id === c.id)!.problem).toMatch(/serves "staging", which no inventory entry or service names/);
    await t.db.setting.upsert({ where: { key: "inventory.yaml" }, create: { key: "inventory.yaml", value: "entries:\n  - environment: staging\n    resources: [stg-1]\n" }, update: { value: "entries:\n  - environment: staging\n    resources: [stg-1]\n" } });
    expect((await listCredentials(t.db, admin)).find((x) => x.id === c.id)!.problem).toBeNull();
    // A typo beside a real name: the list names it.
    await bindCredential(t.db, admin, c.id, { environments: "staging prodution" });
    expect((await listCredentials(t.db, admin)).find((x) => x.id === c.id)!.problem).toMatch(/"prodution" is named by no inventory entry or service/);
  });

  it("says so when a host later belongs to another service", async () => {
    const c = await add({ host: "later.example.test" });
    await t.db.service.create({ data: { name: "later", descriptorYaml: stringify({ id: "later", hosts: ["later.example.test"], protocol: "rest" }) } });
    expect((await listCredentials(t.db, admin)).find((x) => x.id === c.id)!.problem).toMatch(/now belongs to the service later, not unknown/);
  });

  it("POST /api/v1/credentials/{id}/binding: admins bind, auditors get 403 and nothing changes", async () => {
    const c = await add();
    const adminKey = (await createApiKey(t.db, admin, { name: "admin", role: "admin" })).key;
    const auditorKey = (await createApiKey(t.db, admin, { name: "auditor", role: "auditor" })).key;
    const call = async (key: string, body: unknown) => {
      const res = await callRoute(bindingRoute.POST, `/api/v1/credentials/${c.id}/binding`, { method: "POST", key, body: JSON.stringify(body), params: { id: c.id } });
      return { status: res.status, json: (await res.json()) as Record<string, unknown> };
    };
    expect((await call(auditorKey, { environments: "production" })).status).toBe(403);
    expect((await call(adminKey, {})).status).toBe(400);
    const ok = await call(adminKey, { environments: ["production", "staging"] });
    expect(ok.status).toBe(200);
    expect(ok.json.credential).toMatchObject({ id: c.id, serviceId: "unknown", environments: ["production", "staging"], secret: "••••" });
  });

  describe("bulkhead credential", () => {
    let dataDir: string;
    const master = randomBytes(32).toString("base64url");
    const run = async (argv: string[], stdin?: string) => {
      const stdout: string[] = [];
      const ctx: CliContext = { json: argv.includes("--json"), stdout: (l) => stdout.push(l), stderr: () => undefined, stdinIsTTY: stdin === undefined, readStdin: async () => stdin ?? "" };
      const env = { ...databaseEnv(t2), BULKHEAD_MASTER_KEY: master, BULKHEAD_DATA_DIR: dataDir };
      const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
      Object.assign(process.env, env);
      try {
        return { code: (await credentialCommand(argv.filter((a) => a !== "--json"), ctx)) ?? 0, stdout, error: undefined as Error | undefined };
      } catch (error) {
        return { code: error instanceof CliError ? error.exitCode : 1, stdout, error: error as Error };
      } finally {
        for (const [k, v] of Object.entries(saved)) {
          if (v === undefined) delete process.env[k];
          else process.env[k] = v;
        }
      }
    };
    let t2: TestDatabase;
    beforeAll(async () => {
      t2 = await createTestDatabase();
      dataDir = await mkdtemp(path.join(tmpdir(), "bulkhead-cli-bind-"));
    });
    afterAll(async () => {
      await t2.drop();
      await rm(dataDir, { recursive: true, force: true });
    });

    it("add needs --env; bind re-declares; list shows what each serves", async () => {
      const base = ["add", "--name", "gh", "--host", "api.github.com", "--header", "Authorization: Bearer {secret}"];
      const missing = await run(base, "s3cret");
      expect(missing.code).toBe(2);
      expect(missing.error?.message).toMatch(/--env is required/);
      const added = await run([...base, "--env", "staging", "--env", "development", "--json"], "s3cret");
      expect(added.error).toBeUndefined();
      const out = JSON.parse(added.stdout[0]!) as { id: string; serviceId: string; environments: string[] };
      expect(out).toMatchObject({ serviceId: "github", environments: ["development", "staging"] });
      const bound = await run(["bind", out.id, "--env", "production"]);
      expect(bound.stdout).toEqual(["Credential gh now serves github in production."]);
      const noEnv = await run(["bind", out.id]);
      expect(noEnv.code).toBe(2);
      const list = await run(["list"]);
      expect(list.stdout.join("\n")).toContain(`${out.id}  gh  https://api.github.com:443  github in production  Authorization: Bearer {secret}`);
    });
  });

  it("a stored template this version refuses costs that credential only: the others are still injected", async () => {
    const good = await add({ environments: "*" });
    const bad = await add({ environments: "*" });
    // A template written before `Via` became a header no credential may set (it is stored as it was).
    await t.adminDb().credential.update({ where: { id: bad.id }, data: { headerTemplate: "Via: {secret}" } });
    await expect(loadCredentialsForInjection(t.db, keys.workerKey)).rejects.toThrow(/cannot be injected/);
    const unusable: string[] = [];
    const loaded = await loadCredentialsForInjection(t.db, keys.workerKey, unusable);
    expect([...loaded.values()].some((c) => c.credentialId === good.id)).toBe(true);
    expect([...loaded.values()].some((c) => c.credentialId === bad.id)).toBe(false);
    expect(unusable).toEqual([expect.stringContaining(`(${bad.id}) cannot be injected`)]);
    await t.adminDb().credential.delete({ where: { id: bad.id } });
  });
});
