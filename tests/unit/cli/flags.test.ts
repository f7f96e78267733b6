import { describe, expect, it } from "vitest";
import { parseFlags } from "@/cli/args";
import { CliError } from "@/cli/context";

function refusal(args: string[], options: Parameters<typeof parseFlags>[1]): CliError {
  try {
    parseFlags(args, options);
  } catch (error) {
    if (error instanceof CliError) return error;
    throw error;
  }
  throw new Error("accepted");
}

/** A mistyped flag names the one meant, or the ones the command takes: "Unknown option '--ownr'" alone left a new user to read the help. */
describe("unknown flags", () => {
  const agentCreate = { name: { type: "string" }, owner: { type: "string" }, description: { type: "string" } } as const;

  it("suggests the nearest flag the command takes", () => {
    expect(refusal(["--name", "x", "--ownr", "a@example.com"], agentCreate)).toMatchObject({ message: "Unknown option '--ownr' (did you mean --owner?)", exitCode: 2 });
    expect(refusal(["--tsak", "t"], { task: { type: "string" } }).message).toBe("Unknown option '--tsak' (did you mean --task?)");
  });

  it("lists the command's flags when none is near", () => {
    expect(refusal(["--bogus"], agentCreate).message).toBe("Unknown option '--bogus' (its options are --name, --owner, --description)");
  });

  it("never repeats a value given with the unknown flag", () => {
    const error = refusal(["--secret=hunter2-token"], agentCreate);
    expect(error.message).toMatch(/^Unknown option '--secret'/);
    expect(error.message).not.toContain("hunter2");
  });
});
