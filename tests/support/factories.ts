import { randomBytes } from "node:crypto";
import type { Actor } from "@/lib/auth/actor";
import type { Role } from "@/lib/auth/roles";
import { hashPassword } from "@/lib/auth/password";
import type { Db } from "@/lib/db/client";
import { generateSigningKey } from "@/lib/identity/keys";

/** Unique values per call, so tests never collide (documenso-style factories). */
export function unique(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

export const TEST_PASSWORD = "correct horse battery staple";

// Users made with the default password share one real argon2id hash of it (per process): hashing
// takes tens of milliseconds of CPU, and hundreds of users are made in a run. Each hash still
// verifies like any other; a user given a password of its own gets a hash of its own.
let testPasswordHash: Promise<string> | undefined;
const passwordHashFor = (password: string | undefined) => (password === undefined ? (testPasswordHash ??= hashPassword(TEST_PASSWORD)) : hashPassword(password));

export async function makeUser(db: Db, role: Role, options: { password?: string; email?: string } = {}) {
  const email = options.email ?? `${unique(role)}@example.test`;
  const user = await db.user.create({
    data: { email, role, passwordHash: await passwordHashFor(options.password) },
  });
  // A factory actor stands for a person who has just signed in: fresh enough for step-up
  // whenever it acts. Tests of step-up build actors with an explicit authenticatedAt.
  const actor: Actor = {
    kind: "user",
    userId: user.id,
    email: user.email,
    role,
    get authenticatedAt() {
      return Date.now();
    },
  };
  return { user, actor, email, password: options.password ?? TEST_PASSWORD };
}

/**
 * A signing-key row for fixtures that need a kid (issued_tokens rows): a real Ed25519 public key,
 * so a worker that imports every key still loads its snapshot, retired an hour ago, so it never
 * signs or verifies anything; its private half is not stored.
 */
export async function retiredSigningKeyData() {
  const past = new Date(Date.now() - 3600_000);
  const key = await generateSigningKey(new Date(past.getTime() - 3600_000));
  return {
    kid: key.kid,
    alg: key.alg,
    publicJwk: JSON.parse(JSON.stringify(key.publicJwk)) as Record<string, string>,
    privateKeySealed: "not-stored",
    status: "retired" as const,
    createdAt: key.createdAt,
    retiringAt: past,
    verifyUntil: past,
    retiredAt: past,
  };
}
