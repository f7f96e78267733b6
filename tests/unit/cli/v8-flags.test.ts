import { describe, expect, it } from "vitest";
import { commandOf, v8FlagsFor } from "@/scripts/cli-v8-flags.mjs";

describe("the V8 flags of one run of `bulkhead`", () => {
  it("names the command as the CLI does: the first argument that is not --json", () => {
    expect(commandOf(["token", "mint", "--task", "x"])).toBe("token");
    expect(commandOf(["--json", "agent", "list"])).toBe("agent");
    expect(commandOf(["--json"])).toBeNull();
    expect(commandOf([])).toBeNull();
    expect(commandOf(["--", "start"])).toBeNull();
  });

  it("short commands compile WebAssembly with the baseline tier only; start and worker keep V8's default", () => {
    for (const argv of [["token", "mint", "--task", "t"], ["agent", "create", "--name", "a"], ["--json", "task", "list"], ["audit", "verify"], ["sandbox", "run", "--", "worker"], ["--help"], ["help", "start"]]) {
      expect(v8FlagsFor(argv), argv.join(" ")).toEqual(["--liftoff-only"]);
    }
    for (const argv of [["start"], ["worker"], ["--json", "start"], ["start", "--help"]]) expect(v8FlagsFor(argv), argv.join(" ")).toEqual([]);
    expect(v8FlagsFor([])).toEqual([]);
  });
});
