import { AppError } from "@/lib/errors/app-error";
import { roleCan, type Permission, type Role } from "./roles";

/** Who is acting: a signed-in user, an API key, or Bulkhead itself (CLI, start-up). */
export type Actor =
  | {
      kind: "user";
      userId: string;
      email: string;
      role: Role;
      /** The dashboard session acting, when there is one (step-up re-authenticates it). */
      sessionId?: string;
      /** When the person last proved who they are (epoch ms); absent means never, for step-up. */
      authenticatedAt?: number;
      authMethod?: "password" | "oidc";
    }
  | { kind: "api_key"; apiKeyId: string; role: Role; createdById: string | null }
  | {
      kind: "system";
      label: string;
      /** The operating-system account that ran it (the CLI), recorded in its audit events' data. */
      osUser?: string;
    };

export function actorRole(actor: Actor): Role {
  return actor.kind === "system" ? "admin" : actor.role;
}

/** Throws FORBIDDEN unless the actor's role grants `permission`. */
export function assertCan(actor: Actor, permission: Permission): void {
  if (!roleCan(actorRole(actor), permission)) {
    throw new AppError("FORBIDDEN", `Role ${actorRole(actor)} may not ${permission}`, {
      userMessage: "Your role does not allow this.",
    });
  }
}

/** The actor fields of an audit event. */
export function auditActor(actor: Actor): { actorType: string; actorId: string } {
  switch (actor.kind) {
    case "user":
      return { actorType: "user", actorId: actor.userId };
    case "api_key":
      return { actorType: "api_key", actorId: actor.apiKeyId };
    case "system":
      return { actorType: "system", actorId: actor.label };
  }
}
