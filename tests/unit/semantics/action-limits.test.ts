import { describe, expect, it } from "vitest";
import { MAX_ACTIONS } from "@/lib/semantics/types";
import { classifyRequest, json } from "./support";

const SHOP = "https://api.shop.example.com/graphql";
const listQuery = (ids: readonly string[]) => json({ query: "query($v: [ID]) { products(id: $v) { name } }", variables: { v: ids } });

describe("a request with far more actions than one audit event records is refused by the classifier", () => {
  it("125,000 ids in one GraphQL list (1 MB) are refused as too many actions, not an internal error", () => {
    const result = classifyRequest("POST", SHOP, { body: listQuery(Array.from({ length: 125_000 }, (_, i) => String(i))) });
    expect(result.ok ? result.actions.length : result.code).toBe("too_many_actions");
  });

  it("60,000 padded ids (each of which would get a trimmed twin) are refused before the twins are made", () => {
    // (Up to 20,000 are classified, for the proxy to refuse with a record of them: audit-long-requests.test.ts.)
    const result = classifyRequest("POST", SHOP, { body: listQuery(Array.from({ length: 60_000 }, (_, i) => ` ${i}`)) });
    expect(result.ok ? result.actions.length : result.code).toBe("too_many_actions");
  });

  it(`${MAX_ACTIONS} actions are classified; a padded one gets its trimmed twin once (looked up in a set)`, () => {
    const ids = Array.from({ length: MAX_ACTIONS / 2 }, (_, i) => ` p${i}`);
    const result = classifyRequest("POST", SHOP, { body: listQuery([...ids, "p0", " p1"]) });
    if (!result.ok) throw new Error(result.code);
    const resources = result.actions.map((a) => a.resource);
    expect(resources).toHaveLength(MAX_ACTIONS);
    expect(new Set(resources).size).toBe(MAX_ACTIONS);
    expect(resources).toEqual(expect.arrayContaining([" p0", "p0", " p999", "p999"]));
  });
});
