import { describe, expect, it } from "vitest";
import { parseServiceDescriptorYaml } from "@/lib/services/descriptor";

/** What people paste into the Services page's form, and what they are told. */
describe("a service descriptor as pasted", () => {
  const errors = (text: string) => {
    const r = parseServiceDescriptorYaml(text);
    return r.ok ? [] : r.errors;
  };

  it("says an empty document is empty, not that null is not an object", () => {
    for (const text of ["", "   \n", "# only a comment\n"]) expect(errors(text).join(" "), JSON.stringify(text)).toMatch(/document is empty.*id, hosts and protocol/);
  });

  it("says a services: list is one service too many levels deep", () => {
    const list = "services:\n  - id: orders-api\n    hosts: [orders.example.com]\n    protocol: rest\n";
    expect(errors(list).join(" ")).toMatch(/one service per save.*without the services: list/);
    expect(parseServiceDescriptorYaml("id: orders-api\nhosts: [orders.example.com]\nprotocol: rest\n").ok).toBe(true);
  });

  it("refuses an id longer than 64 characters (it is shown and named everywhere, deleting it included)", () => {
    expect(errors(`id: ${"b".repeat(65)}\nhosts: [parked.example.com]\nprotocol: rest\n`).join(" ")).toMatch(/id: .*at most 64/);
    expect(parseServiceDescriptorYaml(`id: ${"b".repeat(64)}\nhosts: [parked.example.com]\nprotocol: rest\n`).ok).toBe(true);
  });
});
