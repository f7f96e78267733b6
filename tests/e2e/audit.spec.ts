import { readFile } from "node:fs/promises";
import pg from "pg";
import { insertEvents } from "../support/audit-events";
import { unique } from "../support/factories";
import { expect, signInViaApi, test } from "./support/fixtures";

/**
 * The Audit page as a security team uses it: filter, open an event, export what the filter shows.
 * The events are written the way the proxy worker writes them, one of them carrying markup and a
 * formula in every field an agent controls.
 */
test("an auditor filters the log, opens an event and exports the filtered CSV", async ({ page, createUser, db }, testInfo) => {
  const owner = await createUser("admin");
  const agent = await db.agent.create({ data: { name: unique("audit-e2e-agent"), ownerId: owner.id } });
  const task = await db.task.create({ data: { agentId: agent.id, purpose: "rotate staging volumes", policyYaml: "rules: []\n", expiresAt: new Date(Date.now() + 3600_000) } });
  const marker = unique("vol_e2e");
  const attack = `<img src=x onerror="window.__pwned=1">`;
  const pool = new pg.Pool({ connectionString: process.env.E2E_DATABASE_URL!, max: 1 });
  try {
    const base = { actorType: "agent", actorId: agent.id, agentId: agent.id, taskId: task.id, effect: "irreversible" };
    await insertEvents(pool, [
      {
        ...base,
        type: "proxy.decision",
        outcome: "deny",
        reason: `=HYPERLINK("https://evil.example") ${attack}`,
        data: {
          eventId: unique("ev"),
          method: "POST",
          url: `https://backboard.railway.com/graphql/v2?${marker}`,
          service: "railway",
          code: "policy_deny",
          kind: "denied",
          actions: [{ service: "railway", environment: "production", resource: marker, operation: `volumeDelete${attack}`, effect: "irreversible" }],
        },
      },
      { ...base, type: "proxy.decision", outcome: "allow", effect: "read", reason: "rule allows project", data: { method: "POST", url: `https://backboard.railway.com/graphql/v2?${marker}`, service: "railway", actions: [{ service: "railway", environment: "staging", resource: marker, operation: "project", effect: "read" }] } },
    ]);
  } finally {
    await pool.end();
  }

  const auditor = await createUser("auditor");
  await signInViaApi(page.request, auditor.email, auditor.password);
  await page.goto("/audit");
  await expect(page.getByTestId("chain-status")).toBeVisible();
  await expect(page.getByTestId("chain-status")).toHaveAttribute("data-state", /verified|pending/);

  // Filter: free text and outcome.
  await page.getByLabel("Search URL, operation, resource, reason").fill(marker);
  await page.getByLabel("Outcome").selectOption("deny");
  await page.getByRole("button", { name: "Apply filters" }).click();
  await expect(page).toHaveURL(/outcome=deny/);
  const rows = page.getByTestId("audit-row");
  await expect(rows).toHaveCount(1);
  const row = rows.first();
  await expect(row).toContainText(agent.name);
  await expect(row).toContainText("rotate staging volumes");
  await expect(row).toContainText(attack); // shown as text, not markup
  await expect(row.locator("img")).toHaveCount(0);
  await page.screenshot({ path: testInfo.outputPath("audit-filtered.png"), fullPage: true });

  // Open it: every field, the semantic action, its place in the chain.
  await row.getByRole("link", { name: /details/ }).click();
  await expect(page.getByRole("heading", { name: /^Event #\d+$/ })).toBeVisible();
  await expect(page.getByTestId("event-outcome")).toContainText("deny");
  // When the database stored it, beside the writer's time.
  await expect(page.getByTestId("event-recorded-at")).toContainText("the database's clock, which no writer can set");
  await expect(page.getByTestId("event-action")).toContainText(marker);
  await expect(page.getByTestId("event-action")).toContainText(`volumeDelete${attack}`);
  await expect(page.getByTestId("event-chain")).toContainText("recomputed: matches");
  await expect(page.getByTestId("event-chain")).toContainText("matches the previous event");
  await expect(page.getByTestId("event-data")).toContainText(marker);
  expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  await page.screenshot({ path: testInfo.outputPath("audit-event.png"), fullPage: true });

  // A filter that matches nothing says so.
  await page.goto(`/audit?q=${marker}&outcome=hold`);
  await expect(page.getByText("No events match these filters")).toBeVisible();

  // Export the filtered view as CSV from the page.
  await page.goto(`/audit?q=${marker}&outcome=deny`);
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "CSV" }).click()]);
  expect(download.suggestedFilename()).toMatch(/^bulkhead-audit-\d{8}T\d{6}Z\.csv$/);
  const csv = await readFile((await download.path())!, "utf8");
  const lines = csv.split("\r\n").filter(Boolean);
  expect(lines).toHaveLength(2); // header + the one denied event
  expect(lines[0]).toContain('"seq","at","type"');
  expect(csv).toContain(`"'=HYPERLINK(""https://evil.example"") ${attack.replace(/"/g, '""')}"`);
  expect(csv).toContain(marker);

  // Reading and exporting were recorded, with the filter.
  await expect
    .poll(async () => (await db.auditEvent.findFirst({ where: { type: "audit.exported", actorId: auditor.id }, orderBy: { seq: "desc" } }))?.data)
    .toMatchObject({ status: "completed", rows: 1, format: "csv", filter: { q: marker, outcome: ["deny"] } });
  expect(await db.auditEvent.count({ where: { type: "audit.event_viewed", actorId: auditor.id } })).toBe(1);
  expect(await db.auditEvent.count({ where: { type: "audit.viewed", actorId: auditor.id } })).toBeGreaterThanOrEqual(3);
});

test("a padded event is found by its last action, and its page lists every action and says how many the record lacks", async ({ page, createUser }) => {
  const marker = unique("ledger_e2e");
  const pool = new pg.Pool({ connectionString: process.env.E2E_DATABASE_URL!, max: 1 });
  try {
    const padding = Array.from({ length: 150 }, (_, i) => ({ service: "orders-db", environment: "staging", resource: `public.t_${i}`, operation: "SELECT", effect: "read" }));
    await insertEvents(pool, [
      {
        type: "proxy.decision",
        actorType: "system",
        actorId: "proxy",
        outcome: "deny",
        effect: "irreversible",
        reason: "no rule allows it",
        data: { method: "POST", url: "https://sql.internal.test/sql", service: "orders-db", actions: [...padding, { service: "orders-db", environment: "production", resource: marker, operation: "DROP TABLE", effect: "irreversible" }], sanitised: { changes: [], count: 0, actionsLeftOut: 40, actionCount: 191 } },
      },
    ]);
  } finally {
    await pool.end();
  }
  const auditor = await createUser("auditor");
  await signInViaApi(page.request, auditor.email, auditor.password);
  await page.goto(`/audit?q=${encodeURIComponent(marker)}`);
  const rows = page.getByTestId("audit-row");
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText("+188 more actions (40 not in the record)");
  await rows.first().getByRole("link", { name: /details/ }).click();
  await expect(page.getByTestId("event-action")).toHaveCount(151);
  await expect(page.getByTestId("event-action").last()).toContainText(marker);
  await expect(page.getByTestId("event-actions-left-out")).toContainText("40 more actions were left out of this record");
  // A system actor named by its id is said once ("system: proxy"), not again in brackets.
  await expect(page.getByTestId("event-actor")).toHaveText("system: proxy");
});

test("an event type no event in the log has is named on the page, alone or beside one that matches", async ({ page, createUser }) => {
  const auditor = await createUser("auditor");
  await signInViaApi(page.request, auditor.email, auditor.password);
  // Signing in recorded auth.signed_in, so the log holds at least that auth type.
  await page.goto("/audit?type=auth.signed_inn");
  await expect(page.getByText("No events match these filters")).toBeVisible();
  await expect(page.getByText(/^Nothing can match: no event in the log has type auth\.signed_inn \(recorded auth types: .*auth\.signed_in.*\)\.$/)).toBeVisible();
  await page.goto("/audit?type=auth.signed_in,auth.signed_inn");
  await expect(page.getByTestId("unmatched-types")).toContainText("no event in the log has type auth.signed_inn");
  await expect(page.getByRole("cell", { name: "auth.signed_in" }).first()).toBeVisible();
});

test("an outcome no event in the log has is named on the page, alone or beside one that matches", async ({ page, createUser }) => {
  const auditor = await createUser("auditor");
  await signInViaApi(page.request, auditor.email, auditor.password);
  // Reading the page records audit.read with outcome allow, so the log holds that outcome.
  await page.goto("/audit?outcome=bogus_outcome");
  await expect(page.getByText("No events match these filters")).toBeVisible();
  await expect(page.getByText(/^Nothing can match: no event in the log has outcome bogus_outcome \(outcomes are words such as allow, deny, .*\)\.$/)).toBeVisible();
  await page.goto("/audit?outcome=allow,bogus_outcome");
  await expect(page.getByTestId("unmatched-outcomes")).toContainText("no event in the log has outcome bogus_outcome");
  await expect(page.getByTestId("audit-row").first()).toBeVisible();
});

test("with filters the export refuses, the page offers no export links (they downloaded the 400 answer as the file)", async ({ page, createUser }) => {
  const auditor = await createUser("auditor");
  await signInViaApi(page.request, auditor.email, auditor.password);
  await page.goto("/audit?from=2026-02-31");
  await expect(page.getByText("These filters cannot be used:")).toBeVisible();
  await expect(page.getByTestId("export-unavailable")).toHaveText("Export: correct the filters first.");
  await expect(page.getByRole("link", { name: "CSV" })).toHaveCount(0);
  await page.goto("/audit?from=2026-02-01");
  await expect(page.getByRole("link", { name: "CSV" })).toHaveAttribute("href", /\/api\/v1\/audit\/export\?from=2026-02-01.*format=csv/);
});

test("the filter form shows every time filter the page applies, so applying it again keeps it; a time it cannot read is kept as typed", async ({ page, createUser }) => {
  const auditor = await createUser("auditor");
  await signInViaApi(page.request, auditor.email, auditor.password);
  const from = page.getByLabel("From (UTC)");
  const to = page.getByLabel("To (UTC)");
  // The forms the filter takes (a bare date, the ISO 8601 time its own message gives as the example,
  // an offset): a datetime-local field shows none of them as written, and showed them empty.
  await page.goto("/audit?from=2026-12-01T09:30:00Z&to=2026-12-02");
  await expect(from).toHaveValue("2026-12-01T09:30");
  await expect(to).toHaveValue("2026-12-02T00:00");
  await page.getByLabel("Search URL, operation, resource, reason").fill("volumes");
  await page.getByRole("button", { name: "Apply filters" }).click();
  await expect(page).toHaveURL(/q=volumes/);
  const url = new URL(page.url());
  expect(new Date(`${url.searchParams.get("from")}Z`).toISOString()).toBe("2026-12-01T09:30:00.000Z");
  expect(new Date(`${url.searchParams.get("to")}Z`).toISOString()).toBe("2026-12-02T00:00:00.000Z");
  await page.goto("/audit?from=2026-12-01T10:30:15.5%2B01:00");
  await expect(from).toHaveValue("2026-12-01T09:30:15.5");
  // A time the filter refuses is said, and stays in its field to be corrected.
  for (const [query, field, typed] of [["from=garbage", from, "garbage"], ["to=2026-02-31T10:00", to, "2026-02-31T10:00"], ["from=2026-13-01", from, "2026-13-01"]] as const) {
    await page.goto(`/audit?${query}`);
    await expect(page.getByText("These filters cannot be used:")).toBeVisible();
    await expect(field, query).toHaveValue(typed);
  }
});
