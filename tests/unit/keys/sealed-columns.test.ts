import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { SEALED_COLUMNS } from "@/lib/keys/sealed-columns";

interface DmmfField {
  name: string;
  dbName?: string | null;
}
interface DmmfModel {
  name: string;
  dbName?: string | null;
  fields: DmmfField[];
}

describe("the list of sealed columns", () => {
  it("names every *_sealed column in the schema, so conversion and rotation miss none", () => {
    const dmmf = JSON.parse(readFileSync("lib/generated/dmmf.json", "utf8")) as { datamodel: { models: DmmfModel[] } };
    const inSchema = dmmf.datamodel.models.flatMap((m) =>
      m.fields.filter((f) => (f.dbName ?? f.name).endsWith("_sealed")).map((f) => `${m.dbName ?? m.name}.${f.dbName ?? f.name}`),
    );
    expect(inSchema.length).toBeGreaterThan(0);
    expect(SEALED_COLUMNS.map((c) => `${c.table}.${c.column}`).sort()).toEqual(inSchema.sort());
  });

  it("lets only the worker open what only the worker may read", () => {
    const opener = Object.fromEntries(SEALED_COLUMNS.map((c) => [c.table, c.opener]));
    // Webhook secrets are the dashboard's: it alone sends webhooks, the worker never reads them.
    expect(opener).toEqual({ signing_keys: "dashboard", credentials: "worker", retired_secrets: "worker", certificate_authorities: "worker", webhooks: "dashboard", idempotency_keys: "dashboard" });
  });
});
