import { test, expect, signInViaApi } from "./support/fixtures";
import { unique } from "../support/factories";

/** A task with an externally registered sandbox (the dashboard never creates namespaces). */
async function seed(db: import("../../lib/db/client").Db, ownerId: string) {
  const agent = await db.agent.create({ data: { name: unique("sandboxed"), ownerId } });
  const task = await db.task.create({ data: { agentId: agent.id, purpose: unique("sandboxed task"), policyYaml: "unlisted: deny\nrules: []\n", expiresAt: new Date(Date.now() + 3_600_000) } });
  return { agent, task };
}

test("an admin registers an external sandbox through the API, sees it live with its task and agent, and stops it from the page", async ({ page, api, createUser, db }) => {
  const admin = await createUser("admin");
  const { agent, task } = await seed(db, admin.id);
  await signInViaApi(api, admin.email, admin.password);
  const address = `10.99.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250) + 1}`;
  const created = await api.post("/api/v1/sandboxes", { data: { taskId: task.id, address } });
  expect(created.status()).toBe(201);
  const { sandbox } = (await created.json()) as { sandbox: { id: string; kind: string; sourceAddress: string } };
  expect(sandbox).toMatchObject({ kind: "external", sourceAddress: address });
  // One live binding per address.
  expect((await api.post("/api/v1/sandboxes", { data: { taskId: task.id, address } })).status()).toBe(409);
  await db.sandbox.update({ where: { id: sandbox.id }, data: { blockedAttempts: 7 } });

  await signInViaApi(page.request, admin.email, admin.password);
  await page.goto("/sandboxes");
  const row = page.getByTestId("sandbox-row").filter({ hasText: address });
  await expect(row).toContainText(task.purpose);
  await expect(row).toContainText(agent.name);
  await expect(row).toContainText("7");
  page.once("dialog", (d) => void d.accept());
  await row.getByRole("button", { name: "Stop" }).click();
  await expect(page.getByTestId("sandbox-row").filter({ hasText: address })).toHaveCount(0);
  const stopped = await db.sandbox.findUnique({ where: { id: sandbox.id } });
  expect(stopped?.removedAt).not.toBeNull();
  expect(stopped?.sourceAddress).toBeNull();

  // The task page shows the sandbox and its audited events.
  await page.goto(`/tasks/${task.id}`);
  await expect(page.getByTestId("task-sandboxes")).toContainText(address);
  await expect(page.getByTestId("sandbox-event").filter({ hasText: "sandbox.started" })).toHaveCount(1);
  await expect(page.getByTestId("sandbox-event").filter({ hasText: "sandbox.stopped" })).toHaveCount(1);
});

test("an auditor sees sandboxes but cannot stop, register or delete them", async ({ page, api, createUser, db }) => {
  const admin = await createUser("admin");
  const auditor = await createUser("auditor");
  const { task } = await seed(db, admin.id);
  const address = `10.98.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250) + 1}`;
  const row = await db.sandbox.create({ data: { taskId: task.id, name: unique("ext"), kind: "external", sourceAddress: address, addresses: address } });

  await signInViaApi(page.request, auditor.email, auditor.password);
  await page.goto("/sandboxes");
  await expect(page.getByTestId("sandbox-row").filter({ hasText: address })).toHaveCount(1);
  await expect(page.getByRole("button", { name: "Stop" })).toHaveCount(0);

  await signInViaApi(api, auditor.email, auditor.password);
  expect((await api.get("/api/v1/sandboxes")).status()).toBe(200);
  expect((await api.post("/api/v1/sandboxes", { data: { taskId: task.id, address: "10.97.0.1" } })).status()).toBe(403);
  expect((await api.delete(`/api/v1/sandboxes/${row.id}`)).status()).toBe(403);
  expect((await db.sandbox.findUnique({ where: { id: row.id } }))?.removedAt).toBeNull();
});

test("a local sandbox's limits (tmpfs sizes, memory, processes and what enforced them) show on the Sandboxes page and in the API", async ({ page, api, createUser, db }) => {
  const admin = await createUser("admin");
  const { task } = await seed(db, admin.id);
  const address = `10.96.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250) + 1}`;
  const limits = { homeBytes: 2 * 1024 ** 3, scratchBytes: 256 * 1024 ** 2, memoryBytes: 6 * 1024 ** 3, pids: 2048, enforcedBy: "cgroup v2" };
  const row = await db.sandbox.create({ data: { taskId: task.id, name: unique("bh-e2e"), kind: "netns", sourceAddress: address, addresses: address, limits } });
  const off = `10.95.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250) + 1}`;
  await db.sandbox.create({ data: { taskId: task.id, name: unique("bh-e2e-off"), kind: "netns", sourceAddress: off, addresses: off, limits: { ...limits, memoryBytes: null, pids: null, enforcedBy: "off" } } });

  await signInViaApi(page.request, admin.email, admin.password);
  await page.goto("/sandboxes");
  await expect(page.getByTestId("sandbox-row").filter({ hasText: address }).getByTestId("sandbox-limits")).toHaveText("home 2 GiB, scratch 256 MiB each, memory 6 GiB, 2048 processes (cgroup v2)");
  await expect(page.getByTestId("sandbox-row").filter({ hasText: off }).getByTestId("sandbox-limits")).toHaveText("home 2 GiB, scratch 256 MiB each, no memory or process limit (memory and process limits turned off)");

  await signInViaApi(api, admin.email, admin.password);
  const got = (await (await api.get(`/api/v1/sandboxes/${row.id}`)).json()) as { sandbox: { limits: unknown } };
  expect(got.sandbox.limits).toEqual(limits);
  const listed = (await (await api.get(`/api/v1/sandboxes?task=${task.id}`)).json()) as { sandboxes: Array<{ id: string; limits: unknown }> };
  expect(listed.sandboxes.find((s) => s.id === row.id)?.limits).toEqual(limits);
});
