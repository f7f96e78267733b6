import { z } from "zod";
import type { OpenApiOperation } from "../registry";
import { actorSchema, sessionSchema } from "../schemas";
import { changePasswordInput } from "@/lib/auth/change-password";
import { reauthenticateInput } from "@/lib/auth/step-up";

const SESSIONS_ONLY = "For dashboard sessions only: an API key is answered 403 (it has no sessions).";

export const meOperations: OpenApiOperation[] = [
  {
    method: "get",
    path: "/api/v1/me",
    operationId: "getMe",
    summary: "Who the request authenticates as",
    tags: ["session"],
    permission: "read",
    responses: { 200: { description: "The acting user or API key.", schema: z.object({ actor: actorSchema }) } },
  },
  {
    method: "post",
    path: "/api/v1/session/reauthenticate",
    operationId: "reauthenticate",
    summary: "Confirm the session's password (step-up)",
    description:
      "For dashboard sessions only: after the password is checked (throttled like a sign-in: 429 with Retry-After), " +
      "changes that answer `step_up_required` (vault credentials, widening policies, API keys, users and roles, service " +
      "descriptors, the inventory) are allowed for BULKHEAD_STEP_UP_MINUTES. API keys never need it.",
    tags: ["session"],
    permission: "read",
    body: reauthenticateInput,
    responses: { 200: { description: "When the session counts as authenticated from.", schema: z.object({ authenticatedAt: z.string() }) } },
  },
  {
    method: "get",
    path: "/api/v1/session/sessions",
    operationId: "listSessions",
    summary: "Your own dashboard sessions",
    description: `Live sessions of the signed-in person (not past their lifetime or idle limit), most recently used first: at most 200, and \`total\`, how many there are (\`POST /api/v1/session/sessions/end-others\` ends every other one). ${SESSIONS_ONLY}`,
    tags: ["session"],
    permission: "read",
    responses: { 200: { description: "The sessions; `current` is the one making the request.", schema: z.object({ sessions: z.array(sessionSchema), total: z.number().int().meta({ description: "How many live sessions there are, listed or not." }) }) } },
  },
  {
    method: "delete",
    path: "/api/v1/session/sessions/{id}",
    operationId: "endSession",
    summary: "End one of your sessions",
    description: `Its next request is signed out (ending the current one signs you out). Another person's session is 404, as is an unknown id. Audited (\`auth.session_ended\`). ${SESSIONS_ONLY}`,
    tags: ["session"],
    permission: "read",
    pathParams: { id: "The session's id (uuid), from GET /api/v1/session/sessions." },
    responses: { 200: { description: "The ended session.", schema: z.object({ session: z.object({ id: z.uuid(), current: z.boolean() }) }) } },
  },
  {
    method: "post",
    path: "/api/v1/session/sessions/end-others",
    operationId: "endOtherSessions",
    summary: "Sign out everywhere else",
    description: `Ends every session of yours but the one making the request. Audited (\`auth.other_sessions_ended\`). ${SESSIONS_ONLY}`,
    tags: ["session"],
    permission: "read",
    responses: { 200: { description: "How many sessions were ended.", schema: z.object({ ended: z.number().int() }) } },
  },
  {
    method: "post",
    path: "/api/v1/session/password",
    operationId: "changePassword",
    summary: "Change your password",
    description:
      "The current password is required (checked under the sign-in throttle: 429 with Retry-After); the new one follows the " +
      "usual rules (at least 12 characters). Every other session of yours ends; this one continues under a new token, whose " +
      "cookie the answer sets (the old cookie no longer works). Accounts that sign in through the identity provider get 409. " +
      `Audited (\`user.password_changed\`). ${SESSIONS_ONLY}`,
    tags: ["session"],
    permission: "read",
    body: changePasswordInput,
    responses: { 200: { description: "Changed.", schema: z.object({ changed: z.literal(true), endedSessions: z.number().int() }) } },
  },
  {
    method: "post",
    path: "/api/v1/users/{id}/sign-out",
    operationId: "signOutUser",
    summary: "End every dashboard session of a user",
    description: "Their next request is signed out. API keys are not sessions: revoke those separately (disabling a user revokes the keys they created). Audited (`user.sessions_ended`).",
    tags: ["session"],
    permission: "users:write",
    pathParams: { id: "The user's id (uuid)." },
    responses: { 200: { description: "How many sessions were ended.", schema: z.object({ ended: z.number().int() }) } },
  },
];
