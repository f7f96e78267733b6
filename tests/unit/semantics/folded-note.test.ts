/**
 * An action says its route was matched with the path folded only when it was: `GET /items/ABC`
 * matches `/items/{id}` as written, and its card said "route matched with the path folded".
 */
import { describe, expect, it } from "vitest";
import { restConfigSchema } from "@/lib/semantics/descriptors/schema";
import { classifyRest } from "@/lib/semantics/rest";
import { canonical } from "./support";

const config = restConfigSchema.parse({ routes: [{ method: "GET", path: "/items/{id}", operation: "items.get", effect: "read", resource: "{id}" }] });
const notes = (url: string) => {
  const r = classifyRest(canonical("GET", url), config);
  if (!r.ok) throw new Error(r.code);
  return r.drafts.map((d) => [d.operation, d.resource, d.detail?.["note"] ?? null]);
};

describe("the folded-path note", () => {
  it("is absent when the path as written matches the route", () => {
    expect(notes("https://api.example.com/items/ABC")).toEqual([["items.get", "ABC", null]]);
    expect(notes("https://api.example.com/items/abc")).toEqual([["items.get", "abc", null]]);
  });

  it("is there when only the folded path matches", () => {
    for (const url of ["https://api.example.com/ITEMS/abc", "https://api.example.com/items/abc/"]) {
      const found = notes(url);
      expect(found.some(([op, , note]) => op === "items.get" && typeof note === "string" && note.includes("folded")), `${url}: ${JSON.stringify(found)}`).toBe(true);
    }
  });
});
