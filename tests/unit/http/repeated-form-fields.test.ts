import { beforeEach, describe, expect, it, vi } from "vitest";

/**
 * A browser form sends each single-valued field once; a request built by hand can send it twice
 * (`role=auditor&role=admin`), and a check made on one value while another is used is the classic
 * differential. The real server actions are called here with such forms, from the dashboard's own
 * origin with an admin's session: each must answer with its validation-error shape and change
 * nothing. The domain functions they would call are spies, so "nothing changed" is "not called".
 */
const ORIGIN = "http://dashboard.test";
vi.mock("next/headers", () => ({ headers: async () => new Headers({ origin: ORIGIN }) }));
vi.mock("next/cache", () => ({ revalidatePath: () => undefined }));
vi.mock("@/lib/config/app", () => ({ loadAppConfig: () => ({ publicUrl: ORIGIN, webhooks: { allowedNetworks: [] } }) }));
vi.mock("@/lib/auth/current", () => ({
  requireActor: async () => ({ kind: "user", userId: "00000000-0000-4000-8000-000000000001", email: "admin@example.test", role: "admin", sessionId: "s" }),
}));
vi.mock("@/lib/db/client", () => ({ getDb: () => ({}) }));
vi.mock("@/lib/users/users", async (original) => ({ ...(await original<object>()), setUserRole: vi.fn(async () => undefined), setUserDisabled: vi.fn(async () => undefined) }));
vi.mock("@/lib/approvals/approver-scope", () => ({ setApproverScope: vi.fn(async () => undefined) }));
vi.mock("@/lib/services/services", () => ({ saveCustomService: vi.fn(async () => ({ name: "x" })), deleteCustomService: vi.fn(async () => undefined) }));
vi.mock("@/lib/tasks/policy", async (original) => ({ ...(await original<object>()), updateTaskPolicy: vi.fn(async () => ({ policyVersion: 2, cancelledApprovals: 0 })) }));

const { formText, formToObject } = await import("@/lib/http/action");
const { updateUserAction } = await import("@/app/(dashboard)/users/actions");
const { setApproverScopeAction } = await import("@/app/(dashboard)/settings/actions");
const { deleteServiceAction } = await import("@/app/(dashboard)/services/actions");
const { updatePolicyAction } = await import("@/app/(dashboard)/tasks/actions");
const { setUserRole } = await import("@/lib/users/users");
const { setApproverScope } = await import("@/lib/approvals/approver-scope");
const { deleteCustomService } = await import("@/lib/services/services");
const { updateTaskPolicy } = await import("@/lib/tasks/policy");

const USER = "00000000-0000-4000-8000-0000000000aa";
const AGENT_A = "00000000-0000-4000-8000-0000000000a1";
const AGENT_B = "00000000-0000-4000-8000-0000000000a2";
const TASK = "00000000-0000-4000-8000-0000000000b1";

function form(entries: Array<[string, string]>): FormData {
  const data = new FormData();
  for (const [k, v] of entries) data.append(k, v);
  return data;
}

beforeEach(() => vi.clearAllMocks());

describe("a single-valued form field sent twice", () => {
  it("is refused by formToObject and formText, naming the field", () => {
    const twice = form([["role", "auditor"], ["role", "admin"], ["id", USER]]);
    expect(() => formToObject(twice)).toThrow(/sent role \(2 times\) more than once/);
    expect(() => formText(twice, "role")).toThrow(/sent role \(2 times\) more than once/);
    // Once each, or declared multi-valued: read as before.
    expect(formToObject(form([["role", "admin"], ["id", USER], ["note", ""]]))).toEqual({ role: "admin", id: USER, note: undefined });
    expect(formToObject(form([["agents", AGENT_A], ["agents", AGENT_B], ["userId", USER]]), ["agents"])).toEqual({ userId: USER });
    expect(formText(twice, "id")).toBe(USER);
  });

  it("changes no role: role=auditor&role=admin is a validation error, and setUserRole is never called", async () => {
    const result = await updateUserAction(null, form([["id", USER], ["role", "auditor"], ["role", "admin"]]));
    expect(setUserRole).not.toHaveBeenCalled();
    expect(result).toMatchObject({ ok: false, message: expect.stringMatching(/^This form sent role \(2 times\) more than once, .* so nothing was changed\./) });
    // Said in the message: no field of the form can correct it.
    expect(result).not.toHaveProperty("fieldErrors.role");
  });

  it("is refused for a hidden id too (the form's target), and for fields read one by one (formText)", async () => {
    expect(await updateUserAction(null, form([["id", USER], ["id", AGENT_A], ["disabled", "true"]]))).toMatchObject({ ok: false, message: expect.stringContaining("sent id (2 times)") });
    expect(await deleteServiceAction(null, form([["name", "harmless"], ["name", "github"]]))).toMatchObject({ ok: false, message: expect.stringContaining("sent name (2 times)") });
    expect(await updatePolicyAction(null, form([["id", TASK], ["policyYaml", "unlisted: deny\n"], ["policyYaml", "unlisted: allow\n"]]))).toMatchObject({ ok: false, message: expect.stringContaining("sent policyYaml (2 times)") });
    expect(deleteCustomService).not.toHaveBeenCalled();
    expect(updateTaskPolicy).not.toHaveBeenCalled();
  });

  it("leaves a multi-valued field working: the approver scope's agents <select multiple>", async () => {
    const result = await setApproverScopeAction(null, form([["userId", USER], ["agents", AGENT_A], ["agents", AGENT_B], ["services", "github"]]));
    expect(result).toEqual({ ok: true, data: null });
    expect(setApproverScope).toHaveBeenCalledWith(expect.anything(), expect.anything(), USER, { agents: [AGENT_A, AGENT_B], services: ["github"] });
    // ...while its single-valued userId sent twice is refused.
    expect(await setApproverScopeAction(null, form([["userId", USER], ["userId", AGENT_A], ["agents", AGENT_A]]))).toMatchObject({ ok: false, message: expect.stringContaining("sent userId (2 times)") });
    expect(setApproverScope).toHaveBeenCalledTimes(1);
  });
});
