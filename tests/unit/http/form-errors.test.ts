import { describe, expect, it } from "vitest";
import { z } from "zod";
import { createAgentInput } from "@/lib/agents/agents";
import { createApiKeyInput } from "@/lib/apikeys/schemas";
import { ROLES } from "@/lib/auth/roles";
import { reauthenticateInput } from "@/lib/auth/step-up";
import { fieldErrorsOf, formErrorMap } from "@/lib/http/form-errors";
import { simulateInput, updatePolicyInput } from "@/lib/tasks/policy";
import { createTaskInput } from "@/lib/tasks/tasks";
import { setupInput } from "@/lib/users/setup";
import { createUserInput } from "@/lib/users/users";
import { addCredentialInput, credentialIdSchema, rotateCredentialInput } from "@/lib/vault/schemas";

/** A sentence: starts with a capital letter, ends with a full stop, and is not zod's own wording. */
const SENTENCE = /^[A-Z{"].*[.?!]$/s;
const RAW = /Invalid input|Invalid option|expected (string|number|boolean|array|object)|received|Too (small|big)|NaN|undefined|>=|<=|\$ZodError/;

function messagesOf(schema: z.ZodType, input: unknown): string[] {
  const result = schema.safeParse(input, { error: formErrorMap });
  if (result.success) return [];
  return Object.values(fieldErrorsOf(result.error)).flat();
}

// Every schema a dashboard form submits (exported ones, and the shapes the actions declare inline).
const FORMS: Record<string, z.ZodType> = {
  registerAgent: createAgentInput,
  agentStatus: z.object({ id: z.uuid(), suspend: z.enum(["true", "false"]) }),
  decideApproval: z.object({ id: z.uuid(), verdict: z.enum(["approve", "deny", "approve_allow"]), note: z.string().trim().max(500).optional() }),
  addCredential: addCredentialInput,
  rotateCredential: z.object({ id: credentialIdSchema, secret: rotateCredentialInput.shape.secret }),
  deleteCredential: z.object({ id: credentialIdSchema }),
  saveService: z.object({ descriptorYaml: z.string().max(200_000) }),
  deleteService: z.object({ name: z.string().min(1).max(100) }),
  saveInventory: z.object({ inventoryYaml: z.string().max(200_000) }),
  createApiKey: createApiKeyInput,
  revokeApiKey: z.object({ id: z.uuid() }),
  createTask: createTaskInput,
  taskId: z.object({ id: z.uuid() }),
  revokeToken: z.object({ jti: z.string().min(16).max(128), taskId: z.uuid() }),
  updatePolicy: updatePolicyInput,
  simulate: simulateInput,
  createUser: createUserInput,
  updateUser: z.object({ id: z.uuid(), role: z.enum(ROLES).optional(), disabled: z.enum(["true", "false"]).optional() }),
  setup: setupInput,
  reauthenticate: reauthenticateInput,
};

const BAD_VALUES: unknown[] = [undefined, null, "", " ", "x", "x".repeat(300_000), 42, -1, 1.5, "not-a-uuid", "root", "\u0000", [], {}, true, "abc", "0", "99999999"];

describe("form errors are sentences, never raw validation output", () => {
  it("for every field of every form, whatever is submitted", () => {
    let checked = 0;
    for (const [form, schema] of Object.entries(FORMS)) {
      const shape = (schema instanceof z.ZodObject ? schema.shape : (schema as unknown as { def: { in?: z.ZodObject } }).def.in?.shape) as Record<string, unknown> | undefined;
      const fields = shape ? Object.keys(shape) : ["value"];
      const inputs: unknown[] = [undefined, null, "text", 7, {}, []];
      for (const field of fields) for (const bad of BAD_VALUES) inputs.push({ [field]: bad });
      inputs.push(Object.fromEntries(fields.map((f) => [f, "\u0000bad"])));
      for (const input of inputs) {
        for (const message of messagesOf(schema, input)) {
          expect(message, `${form} ${JSON.stringify(input)?.slice(0, 80)}`).toMatch(SENTENCE);
          expect(message, `${form} ${JSON.stringify(input)?.slice(0, 80)}`).not.toMatch(RAW);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(500);
  });

  it("says what to do", () => {
    expect(messagesOf(z.object({ name: z.string() }), {})).toEqual(["This field is required."]);
    expect(messagesOf(z.object({ n: z.coerce.number().int() }), { n: "abc" })).toEqual(["Enter a number."]);
    expect(messagesOf(z.object({ n: z.string().max(3) }), { n: "abcd" })).toEqual(["Use at most 3 characters."]);
    expect(messagesOf(z.object({ id: z.uuid() }), { id: "x" })).toEqual(["This is not a valid id."]);
    expect(messagesOf(z.object({ v: z.enum(["approve", "deny"]) }), { v: "maybe" })).toEqual(["Choose one of: approve, deny."]);
    // A schema's own sentence wins.
    expect(messagesOf(createApiKeyInput, { name: "", role: "auditor" })).toEqual(["Enter a name."]);
  });

  it("turns errors raised without the form's error map into sentences too", () => {
    const error = z.object({ id: z.uuid(), name: z.string(), n: z.number().max(2) }).safeParse({ id: "x", n: 5 }).error!;
    const messages = Object.values(fieldErrorsOf(error)).flat();
    expect(messages).toEqual(["This is not a valid id.", "This field is required.", "Enter 2 or less."]);
  });
});
