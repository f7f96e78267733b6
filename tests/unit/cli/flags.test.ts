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

/** What a script's unset variable gives (`--policy "$POLICY"`, `check "$FILE"`): refused by name, never taken as not given. */
describe("empty values and repeated flags", () => {
  const options = { name: { type: "string" }, env: { type: "string", multiple: true }, description: { type: "string" }, all: { type: "boolean" } } as const;
  const refused = (args: string[]) => {
    try {
      parseFlags(args, options, 1);
    } catch (error) {
      if (error instanceof CliError) return error.message;
      throw error;
    }
    return null;
  };

  it("refuses an empty or blank value, a repeated single-value flag, and an empty argument", () => {
    expect(refused(["--name", ""])).toBe("--name is empty: give it a value, or leave the flag out");
    expect(refused(["--name=  "])).toBe("--name is empty: give it a value, or leave the flag out");
    expect(refused(["--env", "a", "--env", ""])).toBe("--env is empty: give it a value, or leave the flag out");
    expect(refused(["--name", "a", "--name=b"])).toBe('--name is given more than once ("a", then "b"); give it once');
    expect(refused([""])).toBe('an argument is empty (""): give a value, or leave it out');
  });

  it("takes free text empty, repeatable flags repeated, and a switch twice", () => {
    expect(refused(["--description", "", "--env", "a", "--env", "b", "--all", "--all", "file"])).toBeNull();
  });
});

describe("an argument a command does not take", () => {
  it("is named the same way whichever parser refuses it", () => {
    expect(refusal(["extra"], { all: { type: "boolean" } }).message).toBe('unexpected argument "extra": this command takes no arguments besides its flags');
    expect(refusal(["extra"], { all: { type: "boolean" } }).exitCode).toBe(2);
  });
});
