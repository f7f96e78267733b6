import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { runCli } from "../../support/cli";

/**
 * `bulkhead policy explain` and `check` judge with the services and inventory stored in the
 * database, as the proxy does; `--offline` is the explicit way to judge without them.
 */
describe("bulkhead policy: the database's services and inventory by default", () => {
  let t: TestDatabase;
  const dir = mkdtempSync(join(tmpdir(), "bulkhead-policy-db-"));
  const file = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  const cli = (argv: string[]) => runCli(argv, { database: t });

  beforeAll(async () => {
    t = await createTestDatabase();
    await t.db.service.create({
      data: { name: "billing", descriptorYaml: stringify({ id: "billing", hosts: ["billing.internal.test"], protocol: "rest", rest: { routes: [{ method: "DELETE", path: "/invoices/{id}", operation: "invoices.delete", effect: "irreversible", resource: "{id}" }] } }) },
    });
    await t.db.setting.create({ data: { key: "inventory.yaml", value: "entries:\n  - environment: staging\n    service: billing\n    resources: [inv_stg_*]\n" } });
  });
  afterAll(async () => {
    await t.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  const policy = () => file("p.yaml", "rules:\n  - id: billing-staging\n    service: billing\n    environments: [staging]\n    effects: [read, write, destructive, irreversible]\n    waive_approval: true\n");

  it("explain answers as the proxy would: the custom service and the inventory's environment", async () => {
    const r = await cli(["policy", "explain", "--policy", policy(), "--request", "DELETE https://billing.internal.test/invoices/inv_stg_1", "--json"]);
    expect(r.code, r.stderr.join("\n")).toBe(0);
    expect(JSON.parse(r.stdout.join("\n"))).toMatchObject({
      service: "billing",
      decision: "allow",
      actions: [{ operation: "invoices.delete", environment: "staging", effect: "irreversible", resource: "inv_stg_1" }],
    });
  });

  it("--offline ignores the database: the service and environment do not exist there", async () => {
    const r = await cli(["policy", "explain", "--offline", "--policy", policy(), "--request", "DELETE https://billing.internal.test/invoices/inv_stg_1", "--json"]);
    expect(r.code).toBe(1);
    expect(JSON.stringify(JSON.parse(r.stdout.join("\n")).errors)).toMatch(/service \\"billing\\" does not exist/);
  });

  it("check uses the database too, and reports names that do not exist with a hint", async () => {
    expect((await cli(["policy", "check", policy()])).code).toBe(0);
    const typo = file("typo.yaml", "rules:\n  - id: t\n    service: biling\n    operations: [invoices.delet]\n    decision: deny\n");
    const r = await cli(["policy", "check", typo]);
    expect(r.code).toBe(1);
    expect(r.stderr[0]).toMatch(/typo\.yaml:3: rules\[0\]\.service: in rule "t": service "biling" does not exist \(did you mean "billing"\?\)/);
    const op = file("op.yaml", "rules:\n  - id: t\n    service: billing\n    operations: [invoices.delet]\n    decision: deny\n");
    expect((await cli(["policy", "check", op])).stderr[0]).toMatch(/did you mean "invoices.delete"/);
  });

  it("explain refuses a request whose URL is a path alone, naming the flag, instead of explaining the proxy's refusal of it", async () => {
    const r = await cli(["policy", "explain", "--policy", policy(), "--request", "GET /items"]);
    expect(r.code).toBe(2);
    expect(r.stdout).toEqual([]);
    expect(r.stderr).toEqual([`bulkhead policy: --request's URL must be absolute, with its scheme and host, such as 'POST https://backboard.railway.com/graphql/v2', not "/items"`]);
  });
});
