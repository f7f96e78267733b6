/**
 * The shipper sends each column of a batch as a text[] in PostgreSQL's binary format
 * (store.ts, textArrayBinary). Here the server itself reads such arrays back: whatever text an
 * event holds (quotes, backslashes, braces, commas, the word NULL, any Unicode) arrives as it
 * was, and the casts the statement applies (timestamptz, uuid) see the same text a literal gave.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isStorableText } from "@/lib/audit/sanitise";
import { textArrayBinary } from "@/proxy-worker/audit/store";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { withClient } from "./helpers";

describe("binary text arrays, as PostgreSQL reads them", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  }, 120_000);
  afterAll(async () => {
    await t?.drop();
  });

  it("arrive element for element, nulls included", async () => {
    const storable = fc.string({ unit: "binary", maxLength: 40 }).filter(isStorableText);
    await withClient(t.workerUrl, async (c) => {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.option(storable, { nil: null }), { maxLength: 12 }), async (values) => {
          const { rows } = await c.query<{ a: Array<string | null>; n: number }>({ text: "SELECT $1::text[] AS a, cardinality($1::text[]) AS n", values: [textArrayBinary(values)] });
          expect(rows[0]!.n).toBe(values.length);
          expect(rows[0]!.a).toEqual(values);
        }),
        { numRuns: 300 },
      );
      const { rows } = await c.query<{ at: Date[]; id: string[] }>({
        text: "SELECT $1::text[]::timestamptz[] AS at, $2::text[]::uuid[] AS id",
        values: [textArrayBinary(["2026-12-04T00:00:00.001Z", null]), textArrayBinary(["0F8FAD5B-D9CB-469F-A165-70867728950E", null])],
      });
      expect(rows[0]!.at[0]!.toISOString()).toBe("2026-12-04T00:00:00.001Z");
      expect(rows[0]!.at[1]).toBeNull();
      expect(rows[0]!.id).toEqual(["0f8fad5b-d9cb-469f-a165-70867728950e", null]);
    });
  });

  it("refuse text PostgreSQL cannot store, as a data error the shipper handles", async () => {
    await withClient(t.workerUrl, async (c) => {
      await expect(c.query({ text: "SELECT $1::text[] AS a", values: [textArrayBinary(["a\u0000b"])] })).rejects.toMatchObject({ code: expect.stringMatching(/^22/) });
    });
  });
});
