/**
 * Free text shown as written (an agent's description, a task's purpose) may not carry characters
 * that make it read other than it is: a direction override showed `desc \u202Egnp.exe` as
 * `desc exe.png` in the Agents list. The first admin's name follows the rule every other
 * person's name does (`bulkhead user create` refused what the setup page took).
 */
import { describe, expect, it } from "vitest";
import { createAgentInput } from "@/lib/agents/agents";
import { createTaskInput } from "@/lib/tasks/tasks";
import { setupInput } from "@/lib/users/setup";

const AGENT = "00000000-0000-4000-8000-000000000001";
const agent = (description: string) => createAgentInput.safeParse({ name: "agent-1", description });
const task = (purpose: string) => createTaskInput.safeParse({ agentId: AGENT, purpose });
const setup = (name: string) => setupInput.safeParse({ email: "a@example.com", name, password: "a long enough passphrase 1", confirm: "a long enough passphrase 1" });

describe("free text people read as written", () => {
  const hostile = ["desc \u202Egnp.exe", "a\u202Db", "x\u2066y\u2069", "mark\u200F", "arabic\u061Cmark", "bell\u0007", "esc\u001b[31m", "c1\u0085"];

  it("an agent's description and a task's purpose refuse direction-changing characters and controls", () => {
    for (const text of hostile) {
      const a = agent(text);
      expect(a.success, JSON.stringify(text)).toBe(false);
      if (!a.success) expect(a.error.issues[0]?.message).toMatch(/must not contain control or direction-changing characters/);
      expect(task(`purpose ${text}`).success, JSON.stringify(text)).toBe(false);
    }
  });

  it("line breaks, tabs, emoji with joiners and variation selectors, and right-to-left scripts are fine (the control)", () => {
    for (const text of ["two\nlines", "tab\there", "family 👨‍👩‍👧 ❤️", "שלום עולם", "مرحبا"]) {
      expect(agent(text).success, JSON.stringify(text)).toBe(true);
      expect(task(`purpose ${text}`).success, JSON.stringify(text)).toBe(true);
    }
  });

  it("the first admin's name refuses what every other person's name refuses", () => {
    expect(setup("Ad\u202Emin").success).toBe(false);
    expect(setup("Zero\u200Bwidth").success).toBe(false);
    expect(setup("Ada Lovelace").success).toBe(true);
  });
});
