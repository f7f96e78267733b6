import { describe, expect, it } from "vitest";
import { bodyView, CARD_BODY_LIMIT } from "@/lib/approvals/body-view";
import type { SemanticAction } from "@/lib/semantics/types";

const drop = { service: "pg-http", environment: "production", resource: "invoices", operation: "DROP TABLE", effect: "irreversible" } as SemanticAction;
const encode = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

describe("the card's body view", () => {
  it("a DROP padded past the part shown is counted as a highlight beyond it, not silently left out", () => {
    const padding = `/* ${"all of this is a harmless read. ".repeat(Math.ceil(CARD_BODY_LIMIT / 30))} */`;
    const view = bodyView(encode({ query: `SELECT 1; ${padding} DROP TABLE invoices` }), { contentType: "application/json", sqlService: true, actions: [drop] });
    expect(view.truncated).toBe(true);
    expect(view.segments.some((s) => s.mark)).toBe(false);
    expect(view.marksBeyond).toBe(2); // "DROP TABLE" and "invoices"
    // The whole body shows them, and nothing lies beyond.
    const full = bodyView(encode({ query: `SELECT 1; ${padding} DROP TABLE invoices` }), { contentType: "application/json", sqlService: true, actions: [drop], limit: null });
    expect(full.marksBeyond).toBe(0);
    expect(full.segments.filter((s) => s.mark).map((s) => s.text)).toEqual(["DROP TABLE", "invoices"]);
  });

  it("a highlight cut by the limit is shown up to it and counted", () => {
    const text = `${"x".repeat(CARD_BODY_LIMIT - 4)}DROP TABLE invoices`;
    const view = bodyView(new TextEncoder().encode(text), { contentType: "text/plain", sqlService: false, actions: [drop] });
    expect(view.segments.at(-1)).toEqual({ text: "DROP", mark: true });
    expect(view.marksBeyond).toBe(2);
  });

  it("a body that fits has nothing beyond", () => {
    const view = bodyView(encode({ query: "DROP TABLE invoices" }), { contentType: "application/json", sqlService: true, actions: [drop] });
    expect(view.truncated).toBe(false);
    expect(view.marksBeyond).toBe(0);
    expect(view.segments.filter((s) => s.mark).map((s) => s.text)).toEqual(["DROP TABLE", "invoices"]);
  });
});
