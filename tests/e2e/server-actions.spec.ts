import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import path from "node:path";
import type { APIRequestContext, APIResponse } from "@playwright/test";
import { unique } from "../support/factories";
import { expect, signInViaApi, test } from "./support/fixtures";
import type { Db } from "../../lib/db/client";
import { openSession } from "../../lib/auth/sessions";

/**
 * Every server action of the running build, enumerated from Next.js's own manifest, is posted to
 * with a valid session cookie from an attacker's page: without Origin, with a foreign Origin, with
 * `Origin: null`, with Sec-Fetch-Site: cross-site, and as a plain cross-site HTML form post. Each
 * must be refused and change nothing in the database. The same request from the dashboard's own
 * origin must then do what it is for, which proves the payloads are real and the test can fail.
 * An action that this file has no payload for fails the test: a new action gets one here.
 */
const requireFromNext = createRequire(path.resolve("node_modules/next/package.json"));
const { encodeReply } = requireFromNext("next/dist/compiled/react-server-dom-webpack/client.node") as {
  encodeReply(value: unknown[]): Promise<string | FormData>;
};

interface ManifestEntry {
  workers: Record<string, unknown>;
  exportedName?: string;
  filename?: string;
}

function manifestActions(): Array<{ id: string; name: string; workers: string[] }> {
  const manifest = JSON.parse(readFileSync(path.resolve(".next/server/server-reference-manifest.json"), "utf8")) as { node: Record<string, ManifestEntry> };
  return Object.entries(manifest.node).map(([id, entry]) => {
    const workers = Object.keys(entry.workers);
    const name = entry.exportedName ?? (Object.values(entry.workers)[0] as { exportedName?: string } | undefined)?.exportedName;
    if (!name) throw new Error(`the manifest does not name action ${id}`);
    return { id, name, workers };
  });
}

interface Fixture {
  db: Db;
  adminId: string;
  adminEmail: string;
  adminPassword: string;
  agentId: string;
  taskId: string;
  approvalId: string;
  credentialId: string;
  serviceName: string;
  apiKeyId: string;
  jti: string;
  userId: string;
  webhookId: string;
  sandboxId: string;
  /** Another session of the admin (what "Sign out" on Your account ends). */
  spareSessionId: string;
  /** The session the actions are posted with (what "Sign out everywhere else" keeps). */
  victimSessionId: string;
}

/** How to call each action: its arguments, and the page it is posted to. */
type Payload = (f: Fixture) => { args: unknown[]; page?: string };
const form = (fields: Record<string, string>) => {
  const data = new FormData();
  for (const [k, v] of Object.entries(fields)) data.append(k, v);
  return data;
};
const withState = (fields: Record<string, string>) => ({ args: [null, form(fields)] });

const PAYLOADS: Record<string, Payload> = {
  signOutAction: () => ({ args: [form({})] }),
  reauthenticateWithOidcAction: () => ({ args: [form({ returnTo: "/agents" })] }),
  registerAgentAction: () => withState({ name: unique("csrf-agent"), description: "should not exist" }),
  setAgentStatusAction: (f) => withState({ id: f.agentId, suspend: "true" }),
  decideApprovalAction: (f) => withState({ id: f.approvalId, verdict: "deny", note: "csrf" }),
  addCredentialAction: () => withState({ name: unique("csrf-cred"), scheme: "https", host: `${unique("h")}.example.test`, headerTemplate: "X-Key: {secret}", secret: "csrf-secret-value-1", environments: "*" }),
  bindCredentialAction: (f) => withState({ id: f.credentialId, environments: "production" }),
  rotateCredentialAction: (f) => withState({ id: f.credentialId, secret: "csrf-secret-value-2" }),
  deleteCredentialAction: (f) => withState({ id: f.credentialId }),
  saveServiceAction: () => withState({ descriptorYaml: `id: ${unique("csrfsvc").replace(/-/g, "")}\nhosts: [${unique("s")}.example.test]\nprotocol: rest\n` }),
  deleteServiceAction: (f) => withState({ name: f.serviceName }),
  saveInventoryAction: () => withState({ inventoryYaml: `entries:\n  - environment: staging\n    resources: ["${unique("vol")}"]\n` }),
  rotateKeysAction: () => withState({}),
  setMaxTtlAction: () => withState({ maxTtl: "7h" }),
  createApiKeyAction: () => withState({ name: unique("csrf-key"), role: "admin" }),
  revokeApiKeyAction: (f) => withState({ id: f.apiKeyId }),
  createTaskAction: (f) => withState({ agentId: f.agentId, purpose: "created cross-site", ttl: "15m" }),
  endTaskAction: (f) => withState({ id: f.taskId }),
  mintTokenAction: (f) => withState({ id: f.taskId }),
  revokeTokenAction: (f) => withState({ jti: f.jti, taskId: f.taskId }),
  stopSandboxAction: (f) => withState({ id: f.sandboxId }),
  updatePolicyAction: (f) => withState({ id: f.taskId, policyYaml: "unlisted: deny\nrules:\n  - service: github\n    effects: [read]\n" }),
  simulateAction: () => withState({ policyYaml: "rules: []\n", method: "GET", url: "https://api.github.com/repos/a/b", body: "", contentType: "" }),
  createUserAction: () => withState({ email: `${unique("csrf-user")}@example.test`, role: "admin" }),
  updateUserAction: (f) => withState({ id: f.userId, role: "admin" }),
  setApprovalRulesAction: () => withState({ write: "1", destructive: "1", irreversible: "1" }),
  setApproverScopeAction: (f) => withState({ userId: f.userId, services: "railway" }),
  createWebhookAction: () => withState({ name: unique("csrf-hook"), url: "https://hooks.example.com/csrf", format: "json" }),
  deleteWebhookAction: (f) => withState({ id: f.webhookId }),
  endSessionAction: (f) => withState({ id: f.spareSessionId }),
  endOtherSessionsAction: (f) => withState({ keep: f.victimSessionId }),
  signInWithPassword: (f) => ({ args: [{}, form({ email: f.adminEmail, password: f.adminPassword })] }),
  signInWithOidc: () => ({ args: [form({})] }),
  completeSetupAction: () => ({ args: ["not-a-valid-setup-token", null, form({ email: "mallory@example.test", password: "a long enough password", confirm: "a long enough password" })] }),
};

/** Actions answering an ActionResult; the others redirect (sign-in and sign-out) or cannot succeed here (no OIDC provider, no setup link). */
const RETURNS_RESULT = Object.keys(PAYLOADS).filter((n) => !["signOutAction", "signInWithPassword", "signInWithOidc", "reauthenticateWithOidcAction", "completeSetupAction"].includes(n));

/** Page a worker key renders ("app/(dashboard)/tasks/[id]/page" -> "/tasks/<id>"). */
function pagePath(worker: string, f: Fixture): string {
  const route = worker
    .replace(/^app/, "")
    .replace(/\/page$/, "")
    .replace(/\/\([^)]+\)/g, "");
  return (route || "/")
    .replace("/agents/[id]", `/agents/${f.agentId}`)
    .replace("/tasks/[id]", `/tasks/${f.taskId}`)
    .replace("/setup/[token]", "/setup/not-a-valid-setup-token");
}

/** Everything in the database that a state change could touch (sessions without their last-seen time). */
async function snapshot(db: Db): Promise<string> {
  const tables = await db.$queryRaw<Array<{ table_name: string }>>`
    SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name`;
  const parts: string[] = [];
  for (const { table_name: table } of tables) {
    const select = table === "sessions" ? `SELECT id, token_hash, user_id, expires_at, authenticated_at FROM "sessions"` : `SELECT * FROM "${table}"`;
    const [row] = await db.$queryRawUnsafe<Array<{ digest: string | null }>>(`SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) AS digest FROM (${select}) t`);
    parts.push(`${table}:${row?.digest ?? "empty"}`);
  }
  return parts.join("\n");
}

async function post(request: APIRequestContext, page: string, id: string, args: unknown[], headers: Record<string, string>): Promise<APIResponse> {
  const body = await encodeReply(args);
  const common = { headers: { "next-action": id, accept: "text/x-component", ...headers }, maxRedirects: 0 };
  if (typeof body === "string") return request.post(page, { ...common, data: body, headers: { ...common.headers, "content-type": "text/plain;charset=UTF-8" } });
  return request.post(page, { ...common, multipart: body });
}

// The snapshots below must see only what the posts do: a webhook another file left (the secrets
// test's, whose receiver never answers) has deliveries the dashboard retries in the background, and
// each hold this file makes would queue more. With cascading deliveries, none is left to retry.
test.beforeEach(async ({ db }) => {
  await db.webhook.deleteMany({});
});

test("every server action refuses a cross-site request and changes nothing; from the dashboard's origin it works", async ({ playwright, createUser, db, api }, testInfo) => {
  test.setTimeout(240_000);
  const baseURL = testInfo.project.use.baseURL!;
  const origin = new URL(baseURL).origin;
  const actions = manifestActions();
  const names = actions.map((a) => a.name);
  // A new action needs a payload here (and so gets tested); a removed one should leave.
  expect(names.filter((n) => !PAYLOADS[n]), "actions without a payload in this test").toEqual([]);
  expect(Object.keys(PAYLOADS).filter((n) => !names.includes(n)), "payloads for actions that no longer exist").toEqual([]);
  expect(actions.length).toBeGreaterThanOrEqual(27);

  const admin = await createUser("admin");
  await signInViaApi(api, admin.email, admin.password);
  const victimSession = await playwright.request.newContext({ baseURL });
  await signInViaApi(victimSession, admin.email, admin.password);
  // This test takes longer than the step-up window; the people behind both sessions confirm their
  // password again before each legitimate change, as the dashboard's dialog would have them do.
  const reauthenticate = async (ctx: APIRequestContext) => {
    const r = await ctx.post("/api/v1/session/reauthenticate", { data: { password: admin.password }, headers: { origin } });
    expect(r.status()).toBe(200);
  };

  async function fixture(): Promise<Fixture> {
    await reauthenticate(api);
    const agent = await db.agent.create({ data: { name: unique("csrf-target"), ownerId: admin.id } });
    const task = (await (await api.post("/api/v1/tasks", { data: { agentId: agent.id, purpose: "csrf target", ttl: "30m" } })).json()) as { task: { id: string } };
    const minted = (await (await api.post(`/api/v1/tasks/${task.task.id}/tokens`)).json()) as { jti: string };
    const approval = await db.approval.create({
      data: { taskId: task.task.id, agentId: agent.id, requestDigest: unique("digest"), method: "DELETE", url: "https://api.github.com/repos/a/b", actions: [], reason: "test", expiresAt: new Date(Date.now() + 600_000) },
    });
    const credential = (await (await api.post("/api/v1/credentials", { data: { name: unique("csrf-c"), host: `${unique("h")}.example.test`, headerTemplate: "X-Key: {secret}", secret: "csrf-secret-value-0", environments: "*" } })).json()) as { credential: { id: string } };
    const serviceName = unique("csrfsvc").replace(/-/g, "");
    await db.service.create({ data: { name: serviceName, descriptorYaml: `id: ${serviceName}\nhosts: [${serviceName}.example.test]\nprotocol: rest\n` } });
    const apiKey = (await (await api.post("/api/v1/api-keys", { data: { name: unique("csrf-k"), role: "auditor" } })).json()) as { apiKey: { id: string } };
    const user = await createUser("auditor");
    // Created after the approval, so that nothing is queued for it (no delivery is retried in the background).
    const webhook = await db.webhook.create({ data: { name: unique("csrf-w"), url: "https://hooks.example.com/csrf", events: ["hold"], secretSealed: "not-a-sealed-secret" } });
    // A sandbox registered from elsewhere (no network of its own): what Stop acts on.
    const sandbox = await db.sandbox.create({ data: { taskId: task.task.id, name: unique("csrf-sbx"), sourceAddress: null, addresses: "", kind: "external" } });
    const spare = await openSession(db, admin.id, 3600);
    const own = (await (await victimSession.get("/api/v1/session/sessions")).json()) as { sessions: Array<{ id: string; current: boolean }> };
    return {
      db, adminId: admin.id, adminEmail: admin.email, adminPassword: admin.password, agentId: agent.id, taskId: task.task.id,
      approvalId: approval.id, credentialId: credential.credential.id, serviceName, apiKeyId: apiKey.apiKey.id, jti: minted.jti, userId: user.id,
      webhookId: webhook.id, sandboxId: sandbox.id, spareSessionId: spare.sessionId, victimSessionId: own.sessions.find((x) => x.current)!.id,
    };
  }

  const attacks: Array<[string, Record<string, string>]> = [
    ["no Origin", {}],
    ["a foreign Origin", { origin: "https://evil.example" }],
    ["Origin: null", { origin: "null" }],
    ["Sec-Fetch-Site: cross-site", { "sec-fetch-site": "cross-site" }],
    ["a same-site sibling origin", { origin: "http://127.0.0.1:1", "sec-fetch-site": "same-site" }],
  ];

  // The session-ending action goes last, so that the others run with a live session.
  const ordered = [...actions].sort((a, b) => Number(a.name === "signOutAction") - Number(b.name === "signOutAction"));
  let worked = 0;
  for (const action of ordered) {
    const f = await fixture();
    const { args } = PAYLOADS[action.name]!(f);
    const page = pagePath(action.workers[0]!, f);
    for (const [attack, headers] of attacks) {
      const before = await snapshot(db);
      const response = await post(victimSession, page, action.id, args, headers);
      expect(response.status(), `${action.name} with ${attack}`).toBe(403);
      expect(await snapshot(db), `${action.name} with ${attack} changed the database`).toBe(before);
    }
    // The classic cross-site HTML form: no Next-Action header, the action id in a form field.
    const before = await snapshot(db);
    const mpa = await victimSession.post(page, { multipart: { [`$ACTION_ID_${action.id}`]: "", name: unique("mpa"), id: f.agentId }, maxRedirects: 0 });
    expect(mpa.status(), `${action.name} as a cross-site form post`).toBe(403);
    expect(await snapshot(db), `${action.name} as a cross-site form post changed the database`).toBe(before);

    // The same request from the dashboard's own origin is not refused as cross-site.
    await reauthenticate(victimSession);
    const beforeSame = await snapshot(db);
    const same = await post(victimSession, page, action.id, PAYLOADS[action.name]!(f).args, { origin });
    expect(same.status(), `${action.name} from the dashboard's origin`).not.toBe(403);
    const text = await same.text();
    if (RETURNS_RESULT.includes(action.name)) expect(text, `${action.name} from the dashboard's origin did not succeed`).toContain('{"ok":true');
    if (action.name === "completeSetupAction") expect(text).toContain("This setup link is invalid");
    const after = await snapshot(db);
    const readOnly = ["simulateAction", "signInWithOidc", "reauthenticateWithOidcAction", "completeSetupAction"];
    if (!readOnly.includes(action.name)) {
      expect(after, `${action.name} from the dashboard's origin changed nothing: its payload is not a real one`).not.toBe(beforeSame);
      worked++;
    }
    // No webhook outlives its step: a later fixture's approval would queue deliveries retried in the background.
    await db.webhook.deleteMany({});
    // Signing out everywhere else ended the other client's session too.
    if (action.name === "endOtherSessionsAction") await signInViaApi(api, admin.email, admin.password);
  }
  expect(worked).toBeGreaterThanOrEqual(23);
  await victimSession.dispose();
});

test("every server action answers arguments that are not its form with a result, not a server error, and changes nothing", async ({ createUser, db, api }, testInfo) => {
  test.setTimeout(240_000);
  const origin = new URL(testInfo.project.use.baseURL!).origin;
  const admin = await createUser("admin");
  await signInViaApi(api, admin.email, admin.password);
  // Actions that take no arguments at all have nothing to be malformed.
  const takesArguments = manifestActions().filter((a) => !["signOutAction", "signInWithOidc"].includes(a.name));
  const f = { agentId: "00000000-0000-4000-8000-000000000000", taskId: "00000000-0000-4000-8000-000000000000" } as Fixture;
  const malformed: Array<[string, unknown[]]> = [
    ["no arguments", []],
    ["a string for the form", [null, "name=x"]],
    ["null for the form", [null, null]],
    ["an object for the form", [null, { name: "x", id: f.agentId }]],
    ["a number for everything", [1, 2, 3]],
  ];
  for (const action of takesArguments) {
    const page = pagePath(action.workers[0]!, f);
    for (const [what, args] of malformed) {
      const before = await snapshot(db);
      const res = await post(api, page, action.id, args, { origin });
      expect(res.status(), `${action.name} with ${what}`).toBeLessThan(500);
      // For these an empty form is a real one: key rotation reads nothing from it, and the approval
      // rules are checkboxes (an unchecked box is not sent), so no fields means all off.
      if (EMPTY_FORM_IS_VALID.includes(action.name)) continue;
      // A refused attempt may be recorded (the audit, a sign-in throttle's count); nothing else changes.
      const changed = diffTables(before, await snapshot(db)).filter((t) => !RECORDS_OF_REFUSALS.includes(t));
      expect(changed, `${action.name} with ${what} changed the database`).toEqual([]);
    }
  }
});

const EMPTY_FORM_IS_VALID = ["rotateKeysAction", "setApprovalRulesAction"];

/** Tables where a refused request leaves its record. */
const RECORDS_OF_REFUSALS = ["audit_events", "audit_chain_head", "sign_in_throttles"];

function diffTables(a: string, b: string): string[] {
  const left = new Map(a.split("\n").map((l) => l.split(":") as [string, string]));
  return b
    .split("\n")
    .map((l) => l.split(":") as [string, string])
    .filter(([t, d]) => left.get(t) !== d)
    .map(([t]) => t);
}

/** Hand-built forms whose hidden id is malformed, and the thing the answer must say the form does not name. */
const MALFORMED_HIDDEN_ID: Record<string, [Record<string, string>, string]> = {
  setAgentStatusAction: [{ id: "not-a-uuid", suspend: "true" }, "agent"],
  decideApprovalAction: [{ id: "not-a-uuid", verdict: "deny", note: "x" }, "approval request"],
  bindCredentialAction: [{ id: "not-a-uuid", environments: "production" }, "credential"],
  rotateCredentialAction: [{ id: "not-a-uuid", secret: "a-new-secret-value" }, "credential"],
  deleteCredentialAction: [{ id: "not-a-uuid" }, "credential"],
  revokeApiKeyAction: [{ id: "not-a-uuid" }, "API key"],
  endTaskAction: [{ id: "not-a-uuid" }, "task"],
  mintTokenAction: [{ id: "not-a-uuid" }, "task"],
  revokeTokenAction: [{ jti: "0123456789abcdef0123", taskId: "not-a-uuid" }, "task"],
  updatePolicyAction: [{ id: "not-a-uuid", policyYaml: "rules: []\n" }, "task"],
  simulateAction: [{ policyYaml: "rules: []\n", method: "GET", url: "https://api.github.com/repos/a/b", body: "", contentType: "", taskId: "not-a-uuid" }, "task"],
  stopSandboxAction: [{ id: "not-a-uuid" }, "sandbox"],
  updateUserAction: [{ id: "not-a-uuid", role: "admin" }, "user"],
  deleteWebhookAction: [{ id: "not-a-uuid" }, "webhook"],
  endSessionAction: [{ id: "not-a-uuid" }, "session"],
  endOtherSessionsAction: [{ keep: "not-a-uuid" }, "session"],
};

test("a form whose hidden id is malformed says which thing it does not name, never 'correct the highlighted fields' with nothing to highlight", async ({ createUser, db, api }, testInfo) => {
  test.setTimeout(120_000);
  const origin = new URL(testInfo.project.use.baseURL!).origin;
  const admin = await createUser("admin");
  await signInViaApi(api, admin.email, admin.password);
  const f = { agentId: "00000000-0000-4000-8000-000000000000", taskId: "00000000-0000-4000-8000-000000000000" } as Fixture;
  const actions = manifestActions().filter((a) => MALFORMED_HIDDEN_ID[a.name]);
  expect(actions.map((a) => a.name).sort()).toEqual(Object.keys(MALFORMED_HIDDEN_ID).sort());
  for (const action of actions) {
    const [fields, what] = MALFORMED_HIDDEN_ID[action.name]!;
    const before = await snapshot(db);
    const res = await post(api, pagePath(action.workers[0]!, f), action.id, [null, form(fields)], { origin });
    expect(res.status(), action.name).toBeLessThan(500);
    const text = await res.text();
    expect(text, action.name).toContain('{"ok":false');
    expect(text, action.name).not.toContain("highlighted fields");
    expect(text, action.name).toContain(`This form does not name a valid ${what}: its ${what} id is missing or malformed, so nothing was changed.`);
    // No field error for a field the form does not show.
    expect(text, action.name).not.toContain('"fieldErrors"');
    expect(diffTables(before, await snapshot(db)).filter((t) => !RECORDS_OF_REFUSALS.includes(t)), action.name).toEqual([]);
  }
});

test("a single-valued field sent twice is refused through the real server, and a multi-valued one still takes several", async ({ createUser, db, api }, testInfo) => {
  const origin = new URL(testInfo.project.use.baseURL!).origin;
  const admin = await createUser("admin");
  const target = await createUser("auditor");
  await signInViaApi(api, admin.email, admin.password);
  const f = { agentId: "00000000-0000-4000-8000-000000000000", taskId: "00000000-0000-4000-8000-000000000000" } as Fixture;
  const actions = manifestActions();
  const action = (name: string) => actions.find((a) => a.name === name)!;
  const entries = (pairs: Array<[string, string]>) => {
    const data = new FormData();
    for (const [k, v] of pairs) data.append(k, v);
    return data;
  };

  // role=auditor&role=admin: a browser never sends it; the person stays an auditor.
  const update = action("updateUserAction");
  const res = await post(api, pagePath(update.workers[0]!, f), update.id, [null, entries([["id", target.id], ["role", "auditor"], ["role", "admin"]])], { origin });
  expect(res.status()).toBeLessThan(500);
  const text = await res.text();
  expect(text).toContain('{"ok":false');
  expect(text).toContain("This form sent role (2 times) more than once");
  expect((await db.user.findUniqueOrThrow({ where: { id: target.id } })).role).toBe("auditor");

  // The approver scope's agents are a <select multiple>: two of them are two agents.
  const approver = await createUser("approver");
  const [a, b] = await Promise.all([unique("scope-a"), unique("scope-b")].map((name) => db.agent.create({ data: { name, ownerId: admin.id } })));
  const scope = action("setApproverScopeAction");
  const saved = await post(api, pagePath(scope.workers[0]!, f), scope.id, [null, entries([["userId", approver.id], ["agents", a!.id], ["agents", b!.id], ["services", ""]])], { origin });
  expect(await saved.text()).toContain('{"ok":true');
  const stored = await db.approverScope.findMany({ where: { userId: approver.id, kind: "agent" }, select: { value: true } });
  expect(stored.map((s) => s.value).sort()).toEqual([a!.id, b!.id].sort());
});

test("every server action, called from the dashboard's own origin, checks the caller itself: signed out, an auditor and an approver change nothing they may not", async ({ playwright, createUser, db, api }, testInfo) => {
  test.setTimeout(240_000);
  const baseURL = testInfo.project.use.baseURL!;
  const origin = new URL(baseURL).origin;
  const admin = await createUser("admin");
  await signInViaApi(api, admin.email, admin.password);
  expect((await api.post("/api/v1/session/reauthenticate", { data: { password: admin.password } })).status()).toBe(200);
  // One set of real targets, made by the admin: a refused call must leave every one of them as it is.
  const agent = await db.agent.create({ data: { name: unique("role-target"), ownerId: admin.id } });
  const task = (await (await api.post("/api/v1/tasks", { data: { agentId: agent.id, purpose: "role target", ttl: "30m" } })).json()) as { task: { id: string } };
  const minted = (await (await api.post(`/api/v1/tasks/${task.task.id}/tokens`)).json()) as { jti: string };
  const approval = await db.approval.create({
    data: { taskId: task.task.id, agentId: agent.id, requestDigest: unique("digest"), method: "DELETE", url: "https://api.github.com/repos/a/b", actions: [], reason: "test", expiresAt: new Date(Date.now() + 600_000) },
  });
  const credential = (await (await api.post("/api/v1/credentials", { data: { name: unique("role-c"), host: `${unique("h")}.example.test`, headerTemplate: "X-Key: {secret}", secret: "role-secret-value-0", environments: "*" } })).json()) as { credential: { id: string } };
  const serviceName = unique("rolesvc").replace(/-/g, "");
  await db.service.create({ data: { name: serviceName, descriptorYaml: `id: ${serviceName}\nhosts: [${serviceName}.example.test]\nprotocol: rest\n` } });
  const apiKey = (await (await api.post("/api/v1/api-keys", { data: { name: unique("role-k"), role: "auditor" } })).json()) as { apiKey: { id: string } };
  const other = await createUser("auditor");
  const webhook = await db.webhook.create({ data: { name: unique("role-w"), url: "https://hooks.example.com/role", events: ["hold"], secretSealed: "not-a-sealed-secret" } });
  const sandbox = await db.sandbox.create({ data: { taskId: task.task.id, name: unique("role-sbx"), sourceAddress: null, addresses: "", kind: "external" } });
  const spare = await openSession(db, admin.id, 3600);
  const own = (await (await api.get("/api/v1/session/sessions")).json()) as { sessions: Array<{ id: string; current: boolean }> };
  const f: Fixture = {
    db, adminId: admin.id, adminEmail: admin.email, adminPassword: admin.password, agentId: agent.id, taskId: task.task.id, approvalId: approval.id,
    credentialId: credential.credential.id, serviceName, apiKeyId: apiKey.apiKey.id, jti: minted.jti, userId: other.id, webhookId: webhook.id,
    sandboxId: sandbox.id, spareSessionId: spare.sessionId, victimSessionId: own.sessions.find((s) => s.current)!.id,
  };

  const callers: Array<[string, APIRequestContext, string[]]> = [];
  callers.push(["signed out", await playwright.request.newContext({ baseURL }), []]);
  for (const role of ["auditor", "approver"] as const) {
    const person = await createUser(role);
    const ctx = await playwright.request.newContext({ baseURL });
    await signInViaApi(ctx, person.email, person.password);
    // What each role may do: an approver decides approvals; anyone signed in may sign out and try the policy simulator.
    callers.push([role, ctx, ["signOutAction", "simulateAction", ...(role === "approver" ? ["decideApprovalAction"] : [])]]);
  }
  // Sign-in takes a password, not a session: the admin's own is in its payload.
  const identity = ["signInWithPassword", "signInWithOidc", "reauthenticateWithOidcAction"];
  let refused = 0;
  for (const action of manifestActions()) {
    if (identity.includes(action.name)) continue;
    const page = pagePath(action.workers[0]!, f);
    for (const [who, ctx, allowed] of callers) {
      if (allowed.includes(action.name)) continue;
      const before = await snapshot(db);
      const res = await post(ctx, page, action.id, PAYLOADS[action.name]!(f).args, { origin });
      expect(res.status(), `${action.name} ${who}`).toBeLessThan(500);
      const text = await res.text();
      if (RETURNS_RESULT.includes(action.name)) expect(text, `${action.name} ${who}`).toContain('{"ok":false');
      expect(diffTables(before, await snapshot(db)).filter((t) => !RECORDS_OF_REFUSALS.includes(t)), `${action.name} ${who} changed the database`).toEqual([]);
      refused++;
    }
  }
  expect(refused).toBeGreaterThanOrEqual(85);
  for (const [, ctx] of callers) await ctx.dispose();
  // Its webhook (with a secret no one sealed) must not receive later tests' holds, nor show in their lists.
  await db.webhook.deleteMany({ where: { id: f.webhookId } });
});
