import { describe, expect, it } from "vitest";
import { z } from "zod";
import { describeError, describeErrorJson } from "@/cli/errors";
import { decodeUtf8, storableInput } from "@/cli/text-input";
import { AppError } from "@/lib/errors/app-error";

describe("the CLI's error line", () => {
  const policy = new AppError("INVALID_INPUT", "The policy is not valid.", {
    details: { fieldErrors: { policyYaml: ['line 4: rules[0].operations[0]: operation "volumDelete" is not an operation of service railway', "line 7: rules[1].service: service\n\"railwy\" does not exist"] } },
  });

  it("names what is wrong with each field, on one line, in text and in --json", () => {
    const line = describeError(policy);
    expect(line).toBe('The policy is not valid: line 4: rules[0].operations[0]: operation "volumDelete" is not an operation of service railway; line 7: rules[1].service: service "railwy" does not exist');
    expect(line).not.toContain("\n");
    const json = describeErrorJson(policy);
    expect(json).toMatchObject({ code: "invalid_input", message: line });
    expect(json.issues).toEqual([
      { path: "policyYaml", message: 'line 4: rules[0].operations[0]: operation "volumDelete" is not an operation of service railway' },
      { path: "policyYaml", message: 'line 7: rules[1].service: service "railwy" does not exist' },
    ]);
  });

  it("does not repeat a reason the message already gives, and ignores details that are not field errors", () => {
    const ttl = "The time to live must be between 1m and 8h.";
    expect(describeError(new AppError("INVALID_INPUT", ttl, { details: { fieldErrors: { ttl: [ttl] } } }))).toBe(ttl);
    expect(describeError(new AppError("FORBIDDEN", "Re-authenticate first.", { details: { stepUp: { maxAgeSeconds: 300 } } }))).toBe("Re-authenticate first.");
    expect(describeErrorJson(new AppError("NOT_FOUND", "No such task.")).issues).toBeUndefined();
  });
});

describe("a schema's refusal on the CLI's line", () => {
  it("names one value of a comma-separated flag by its place in the list, counted from 1", () => {
    const error = z.object({ effect: z.array(z.enum(["read", "write"], { error: "an effect is one of read, write" })) }).safeParse({ effect: ["read", "bogus"] }).error!;
    expect(describeError(error)).toBe("--effect (value 2): an effect is one of read, write");
    expect(describeError(error)).not.toContain("--effect.1");
  });

  it("says what a value must be instead of zod's wording, and each refusal once", () => {
    const schema = z.object({ ttl: z.union([z.string(), z.number()]), dryRun: z.boolean(), name: z.string().min(2, "Too short.").min(2, "Too short.") });
    const error = schema.safeParse({ ttl: [], dryRun: "no", name: "a" }).error!;
    expect(describeError(error)).toBe("--ttl: matches none of its forms: must be a string, not an array; or must be a number, not an array; dryRun: must be true or false, not a string; --name: Too short.");
    expect(describeErrorJson(error).issues).toEqual([
      { path: "ttl", message: "matches none of its forms: must be a string, not an array; or must be a number, not an array" },
      { path: "dryRun", message: "must be true or false, not a string" },
      { path: "name", message: "Too short." },
    ]);
  });
});

describe("text handed to the CLI", () => {
  it("is UTF-8 or refused by name, never mended", () => {
    expect(decodeUtf8(Buffer.from("café ✓"), "standard input")).toBe("café ✓");
    expect(() => decodeUtf8(Buffer.from([0x63, 0x61, 0x66, 0xe9]), "standard input")).toThrow("standard input is not valid UTF-8 text");
    expect(() => decodeUtf8(Buffer.from([0xed, 0xa0, 0x80]), "--policy p.yaml")).toThrow("--policy p.yaml is not valid UTF-8 text");
  });

  it("refuses what PostgreSQL cannot store, and passes the rest unchanged", () => {
    expect(storableInput("sk_live_1\n", "the secret on stdin")).toBe("sk_live_1\n");
    expect(() => storableInput("a\u0000b", "the secret on stdin")).toThrow(/^the secret on stdin must not contain NUL characters/);
    expect(() => storableInput("a\ud800b", "the password on stdin")).toThrow(/unpaired UTF-16 surrogates/);
    expect(storableInput("\ud83d\ude00", "x")).toBe("\ud83d\ude00");
  });

  it("a driver's error whose message starts with an empty line still says something", () => {
    expect(describeError(new Error("\n\nInvalid `prisma.task.create()` invocation:\n\ninvalid byte sequence"))).toBe("invalid byte sequence");
    expect(describeError(Object.assign(new Error(""), { name: "DriverError" }))).toBe("DriverError");
  });

  it("a failed query says what the database said, not Prisma's heading and the caller's source position", () => {
    // The shape Prisma 7 gives a query the database refused (a trigger raising, a full disk).
    const refused = Object.assign(new Error("\nInvalid `tx.replayRun.create()` invocation in\n/app/dist/cli/index.js:12:30\n\n  11 const run = await tx.replayRun.create(\n→ 12 ...\nDatabase error. Code: `P0001`. Message: `no space left on device`"), {
      code: "P2039",
      meta: { modelName: "ReplayRun", driverAdapterError: { name: "DriverAdapterError", cause: { originalCode: "P0001", originalMessage: "no space left on device", kind: "postgres", code: "P0001", message: "no space left on device" } } },
    });
    expect(describeError(refused)).toBe("the database answered: no space left on device");
    expect(describeErrorJson(refused)).toEqual({ code: "error", message: "the database answered: no space left on device" });
    // Without the driver's part, the last line of Prisma's message is what it has to say.
    const { meta: _meta, ...bare } = refused;
    expect(describeError(Object.assign(new Error(refused.message), bare))).toBe("Database error. Code: `P0001`. Message: `no space left on device`");
    // A heading with nothing after it is kept rather than printing nothing.
    expect(describeError(new Error("Invalid `prisma.task.create()` invocation in"))).toBe("Invalid `prisma.task.create()` invocation in");
  });
});
