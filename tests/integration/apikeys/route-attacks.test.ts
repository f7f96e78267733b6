import os from "node:os";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as approveRoute from "@/app/api/v1/approvals/[id]/approve/route";
import * as sandboxesRoute from "@/app/api/v1/sandboxes/route";
import * as approvalSettingsRoute from "@/app/api/v1/settings/approvals/route";
import { createApiKey } from "@/lib/apikeys";
import type { Actor } from "@/lib/auth/actor";
import type { TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";
import type { RouteHandler } from "../../support/no-session";
import { callRoute, routeDatabase } from "../../support/routes";

// Requests without a session cookie; API keys and the database are real (tests/support/no-session.ts).
vi.mock("@/lib/auth/current", () => import("../../support/no-session"));

/**
 * Requests a holder of a key sends on purpose to make a route fail in a way it did not plan for:
 * each must be a clear 4xx that names the problem, never a 500 from the database.
 */
describe("route handlers under hostile input", () => {
  let t: TestDatabase;
  let admin: Actor;
  let adminKey: string;
  let approverKey: string;
  let agentId: string;
  const call = <P,>(handler: RouteHandler<P>, method: string, path: string, key: string, body?: unknown, params = {} as P) =>
    callRoute(handler, path, { method, key, body: body === undefined ? undefined : JSON.stringify(body), params });

  beforeAll(async () => {
    t = await routeDatabase();
    const a = await makeUser(t.db, "admin");
    admin = a.actor;
    adminKey = (await createApiKey(t.db, admin, { name: unique("admin"), role: "admin" })).key;
    approverKey = (await createApiKey(t.db, admin, { name: unique("approver"), role: "approver" })).key;
    agentId = (await t.db.agent.create({ data: { name: unique("agent"), ownerId: a.user.id } })).id;
  });
  afterAll(() => t.drop());

  const activeTask = () => t.db.task.create({ data: { agentId, purpose: "attack", policyYaml: "rules: []\n", expiresAt: new Date(Date.now() + 3600_000) } });

  it("answers 404 for an approval id that is not a uuid, with allowForTask as without it", async () => {
    for (const id of ["x", "-1", "1.5", "99999999999999999999999", "1".repeat(5000), "00000000-0000-0000-0000-00000000000g"]) {
      for (const body of [{ allowForTask: true }, {}]) {
        const res = await call(approveRoute.POST, "POST", `/api/v1/approvals/${id}/approve`, approverKey, body, { id });
        expect(res.status, `${id.slice(0, 20)} ${JSON.stringify(body)}`).toBe(404);
        expect(await res.json()).toMatchObject({ error: "not_found" });
      }
    }
  });

  it("refuses a number of approvers sent as anything but a whole number (true, [2], 0x2, 1e0), never reading it as one", async () => {
    for (const irreversible of [true, [2], "0x2", "1e0", " ", "2.5", false, {}]) {
      const res = await call(approvalSettingsRoute.PUT, "PUT", "/api/v1/settings/approvals", adminKey, { requiredByEffect: { irreversible } });
      expect(res.status, JSON.stringify(irreversible)).toBe(400);
      expect(await res.json()).toMatchObject({ error: "invalid_input", issues: [{ path: "requiredByEffect.irreversible" }] });
    }
    expect(await t.db.setting.count({ where: { key: "approvals.required_by_effect" } })).toBe(0);
    // Decimal digits, as a form sends them, are a number.
    const res = await call(approvalSettingsRoute.PUT, "PUT", "/api/v1/settings/approvals", adminKey, { requiredByEffect: { irreversible: "2", destructive: 3 } });
    expect(await res.json()).toMatchObject({ settings: { requiredByEffect: { irreversible: 2, destructive: 3 } } });
  });

  it("refuses to bind a task to a loopback address or one of this machine's, which every local process connects from (400 naming address, nothing bound)", async () => {
    // The transparent listeners listen on 127.0.0.1 by default and take the task from the source
    // address: a binding for 127.0.0.1 would give this task's authority, without a token, to any
    // process on the worker's machine that connects to them (another agent, a script).
    const task = await activeTask();
    for (const address of ["127.0.0.1", "127.0.0.53", "127.255.255.254", "::1", "::ffff:127.0.0.1", "0:0:0:0:0:0:0:1", "::ffff:7f00:1"]) {
      const res = await call(sandboxesRoute.POST, "POST", "/api/v1/sandboxes", adminKey, { taskId: task.id, address });
      expect(res.status, address).toBe(400);
      expect(await res.json(), address).toMatchObject({ error: "invalid_input", issues: [{ path: "address", message: expect.stringMatching(/loopback address/) }] });
    }
    // This machine's own interface addresses are the same thing reached another way. A sandbox
    // gateway on this machine's `lo` (left by a `bulkhead start` with isolation on, whose fence
    // outlives it by design) is refused as a gateway, below.
    const gateways = ["10.213.0.1", "fd42:b17e:ad00::1"];
    const own = Object.values(os.networkInterfaces()).flat().map((a) => a!.address.replace(/%.*$/, "")).filter((a) => !a.startsWith("127.") && a !== "::1" && !gateways.includes(a));
    for (const address of own) {
      const res = await call(sandboxesRoute.POST, "POST", "/api/v1/sandboxes", adminKey, { taskId: task.id, address });
      expect(res.status, address).toBe(400);
      expect(await res.json(), address).toMatchObject({ issues: [{ path: "address", message: expect.stringMatching(/address of the machine Bulkhead runs on/) }] });
    }
    // The sandbox gateways are addresses of the worker's machine (on its `lo` while isolation
    // runs), whichever machine the dashboard runs on and whether or not they are there yet.
    for (const address of ["10.213.0.1", "fd42:b17e:ad00::1", "fd42:b17e:ad00:0::0001"]) {
      const res = await call(sandboxesRoute.POST, "POST", "/api/v1/sandboxes", adminKey, { taskId: task.id, address });
      expect(res.status, address).toBe(400);
      expect(await res.json(), address).toMatchObject({ issues: [{ path: "address", message: expect.stringMatching(/sandbox gateway/) }] });
    }
    expect(await t.db.sandbox.count({ where: { taskId: task.id } })).toBe(0);
    // A pod's address next to it is still bound.
    const ok = await call(sandboxesRoute.POST, "POST", "/api/v1/sandboxes", adminKey, { taskId: task.id, address: "10.77.9.1" });
    expect(ok.status).toBe(201);
  });

  it("answers 409 naming the field for a sandbox name or address already taken, never 500", async () => {
    const task = await activeTask();
    const name = unique("pod").toLowerCase();
    const first = await call(sandboxesRoute.POST, "POST", "/api/v1/sandboxes", adminKey, { taskId: task.id, address: "10.77.0.1", name });
    expect(first.status).toBe(201);
    const sameName = await call(sandboxesRoute.POST, "POST", "/api/v1/sandboxes", adminKey, { taskId: task.id, address: "10.77.0.2", name });
    expect(sameName.status).toBe(409);
    expect(await sameName.json()).toMatchObject({ error: "conflict", issues: [{ path: "name" }] });
    const sameAddress = await call(sandboxesRoute.POST, "POST", "/api/v1/sandboxes", adminKey, { taskId: task.id, address: "10.77.0.1" });
    expect(sameAddress.status).toBe(409);
    expect(await sameAddress.json()).toMatchObject({ error: "conflict", issues: [{ path: "address" }] });
    expect(await t.db.sandbox.count({ where: { taskId: task.id } })).toBe(1);
  });

  it("binds a task only to an address written one way: no shorthand, octal, hex, integer, zone or unspecified forms", async () => {
    const task = await activeTask();
    // ipaddr.js reads "10.0.12" as 10.0.0.12, "012.0.0.1" as 10.0.0.1 (octal), "167772161" as 10.0.0.1:
    // a typo or a crafted spelling bound the task's authority to another pod than the one meant.
    for (const address of ["10.0.12", "012.0.0.1", "0x0a.0.0.1", "0xa000001", "167772161", "10.1", "fe80::1%eth0", "0.0.0.0", "::", "255.255.255.255", "224.0.0.1", "ff02::1", " 10.0.0.1"]) {
      const res = await call(sandboxesRoute.POST, "POST", "/api/v1/sandboxes", adminKey, { taskId: task.id, address });
      expect(res.status, address).toBe(400);
      expect(await res.json()).toMatchObject({ error: "invalid_input", issues: [{ path: "address" }] });
    }
    expect(await t.db.sandbox.count({ where: { taskId: task.id } })).toBe(0);
    for (const [address, stored] of [["10.0.0.77", "10.0.0.77"], ["::ffff:10.0.0.78", "10.0.0.78"], ["2001:DB8:0::79", "2001:db8::79"]] as const) {
      const res = await call(sandboxesRoute.POST, "POST", "/api/v1/sandboxes", adminKey, { taskId: task.id, address });
      expect(res.status, address).toBe(201);
      expect(((await res.json()) as { sandbox: { addresses: string } }).sandbox.addresses).toBe(stored);
    }
  });

  it("registers one of two concurrent sandboxes at one address; the other is a 409", async () => {
    for (let round = 0; round < 5; round++) {
      const task = await activeTask();
      const address = `10.78.${round}.1`;
      const answers = await Promise.all([0, 1, 2].map(() => call(sandboxesRoute.POST, "POST", "/api/v1/sandboxes", adminKey, { taskId: task.id, address })));
      expect(answers.map((r) => r.status).sort()).toEqual([201, 409, 409]);
      expect(await t.db.sandbox.count({ where: { taskId: task.id } })).toBe(1);
    }
  });
});
