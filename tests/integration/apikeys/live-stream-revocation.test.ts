import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as eventsRoute from "@/app/api/v1/approvals/events/route";
import { createApiKey, revokeApiKey } from "@/lib/apikeys";
import type { Actor } from "@/lib/auth/actor";
import { createSession, deleteSession, resolveSession } from "@/lib/auth/sessions";
import { setUserDisabled, setUserRole } from "@/lib/users/users";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser } from "../../support/factories";

// next-auth cannot load outside Next's runtime: the session-cookie actor is set by each test,
// as the jwt callback would resolve it when the stream opens. Everything else is real.
let sessionActor: Actor | null = null;
vi.mock("@/lib/auth/current", async () => {
  const { AppError } = await import("@/lib/errors/app-error");
  return {
    requireActor: async () => {
      if (!sessionActor) throw new AppError("UNAUTHENTICATED", "Sign in first.");
      return sessionActor;
    },
  };
});

/** Reads from the stream until it ends or `ms` pass; returns what was read and whether it ended. */
async function readFor(reader: ReadableStreamDefaultReader<Uint8Array>, ms: number, until?: string): Promise<{ text: string; ended: boolean }> {
  const decoder = new TextDecoder();
  let text = "";
  const deadline = Date.now() + ms;
  let pending: Promise<ReadableStreamReadResult<Uint8Array>> | null = null;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) return { text, ended: false };
    pending ??= reader.read();
    const next = await Promise.race([pending, new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), left))]);
    if (next === "timeout") return { text, ended: false };
    pending = null;
    if (next.done) return { text, ended: true };
    text += decoder.decode(next.value, { stream: true });
    if (until && text.includes(until)) return { text, ended: false };
  }
}

describe("the live approval stream re-checks who is listening", () => {
  let t: TestDatabase;
  let admin: Actor;

  beforeAll(async () => {
    t = await createTestDatabase();
    process.env.BULKHEAD_DASHBOARD_DATABASE_URL = t.url; // getDb() in the handler reads it on first use
    admin = (await makeUser(t.db, "admin")).actor;
  });
  afterAll(() => t.drop());

  const open = (headers: Record<string, string> = {}) => eventsRoute.GET(new Request("http://127.0.0.1:3000/api/v1/approvals/events", { headers }), { params: Promise.resolve({}) });

  /** Opens a stream, checks it is live, applies `cut`, and expects the stream to end within a few seconds. */
  async function endsAfter(headers: Record<string, string>, cut: () => Promise<unknown>) {
    const res = await open(headers);
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    try {
      const first = await readFor(reader, 3000, "event: approvals");
      expect(first.text).toContain("event: approvals");
      expect(first.ended).toBe(false);
      await cut();
      const after = await readFor(reader, 5000);
      expect(after.ended).toBe(true);
      expect(after.text).toContain("event: end");
    } finally {
      await reader.cancel().catch(() => undefined);
    }
  }

  it("ends when its API key is revoked", async () => {
    sessionActor = null;
    const { apiKey, key } = await createApiKey(t.db, admin, { name: "stream", role: "auditor" });
    await endsAfter({ authorization: `Bearer ${key}` }, () => revokeApiKey(t.db, admin, apiKey.id));
  });

  it("ends when the API key's creator is disabled", async () => {
    sessionActor = null;
    const creator = await makeUser(t.db, "admin");
    const { key } = await createApiKey(t.db, creator.actor, { name: "stream", role: "auditor" });
    await endsAfter({ authorization: `Bearer ${key}` }, () => setUserDisabled(t.db, admin, creator.user.id, true));
  });

  async function sessionOf(role: "admin" | "approver" | "auditor") {
    const person = await makeUser(t.db, role);
    const token = await createSession(t.db, person.user.id, 3600);
    const s = (await resolveSession(t.db, token))!;
    sessionActor = { kind: "user", userId: s.userId, email: s.email, role: s.role, sessionId: s.sessionId, authenticatedAt: s.authenticatedAt };
    return { person, token };
  }

  it("ends when the session is signed out", async () => {
    const { token } = await sessionOf("approver");
    await endsAfter({}, () => deleteSession(t.db, token));
  });

  it("ends when the session's user is disabled", async () => {
    const { person } = await sessionOf("approver");
    await endsAfter({}, () => setUserDisabled(t.db, admin, person.user.id, true));
  });

  it("ends when the session's user changes role", async () => {
    const { person } = await sessionOf("approver");
    await endsAfter({}, () => setUserRole(t.db, admin, person.user.id, "auditor"));
  });
});
