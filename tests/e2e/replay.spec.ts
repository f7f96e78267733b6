import { test, expect, signInViaApi } from "./support/fixtures";

const ROWS: Array<[boolean, boolean, boolean]> = [
  [true, true, true],
  [true, true, false],
  [true, false, true],
  [true, false, false],
  [false, true, true],
  [false, true, false],
  [false, false, true],
  [false, false, false],
];

/** A recorded run as `bulkhead replay` writes it, one cell per switch combination and behaviour. */
function cells(reason: string) {
  return ROWS.flatMap(([identity, policy, isolation]) =>
    (["incident", "evasive"] as const).map((behaviour) => {
      const deleted = !identity && !isolation && (behaviour === "evasive" || !policy);
      return {
        identity,
        policy,
        isolation,
        behaviour,
        expected: deleted ? "deleted" : "stopped",
        outcome: deleted ? "deleted" : "stopped",
        layer: deleted ? "none" : identity ? "identity" : "policy",
        reason: deleted ? "the upstream ran it with the account token (deleted vol_prod)" : reason,
        bulkheadOnPath: policy || isolation,
        volumesLeft: deleted ? ["vol_stg"] : ["vol_prod", "vol_prod_backup", "vol_stg"],
        events: [
          { id: "1", seq: "1", type: "proxy.decision", outcome: "deny", summary: `deny [identity] volumeDelete (irreversible, production, vol_prod): ${reason}` },
          // As `bulkhead replay` records them: events of its own throwaway Bulkhead, with no chain position here.
          { id: "2", seq: null, type: "sandbox.removed", outcome: null, summary: "sandbox.removed: the command exited with 0" },
        ],
        upstream: deleted ? ["account authority: volumeDelete(vol_prod) -> 200 deleted vol_prod"] : [],
      };
    }),
  );
}

test("the Replay page shows the last run: when, on which commit, and per cell the outcome, the stopping layer and the audit events", async ({ page, createUser, db }) => {
  const auditor = await createUser("auditor");
  const reason = `token_scope: marker ${Date.now()}`;
  const commit = "0123456789abcdef0123456789abcdef01234567";
  await db.replayRun.create({ data: { startedAt: new Date(Date.now() - 60_000), finishedAt: new Date(Date.now() + 3_600_000), commit, passed: true, tableMarkdown: "|", cells: cells(reason) } });

  await signInViaApi(page.request, auditor.email, auditor.password);
  await page.goto("/replay");
  await expect(page.getByRole("link", { name: "Replay" })).toBeVisible();
  await expect(page.getByTestId("replay-run")).toContainText("every cell as expected");
  await expect(page.getByTestId("replay-run")).toContainText(commit.slice(0, 12));
  await expect(page.getByTestId("replay-cell")).toHaveCount(16);
  await expect(page.locator('[data-testid="replay-cell"][data-outcome="deleted"]')).toHaveCount(3);
  const first = page.getByTestId("replay-cell").first();
  await expect(first).toContainText(reason);
  await first.getByText("What happened").click();
  await expect(first.getByRole("link", { name: "#1" })).toHaveAttribute("href", "/audit/1");
  await expect(first).toContainText("event 2 sandbox.removed");
  await expect(first.getByRole("link", { name: /#2/ })).toHaveCount(0);
});
