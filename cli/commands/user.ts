import { isRole, ROLES } from "@/lib/auth/roles";
import { listUsers, type UserSummary } from "@/lib/users/view";
import { parseFlags, requireFlag } from "../args";
import { CliError, type CommandHandler } from "../context";
import { storableInput } from "../text-input";
import { usageLine } from "../help";
import { CLI_ACTOR, withCliDatabase, withCliSql } from "../database";
import type { CliContext } from "../context";
import type { Db } from "@/lib/db/client";

const USAGE = usageLine("user");

const toJson = (u: UserSummary) => ({
  id: u.id,
  email: u.email,
  name: u.name,
  role: u.role,
  disabled: u.disabled,
  sso: u.sso,
  lastLoginAt: u.lastLoginAt?.toISOString() ?? null,
  createdAt: u.createdAt.toISOString(),
});

export const userCommand: CommandHandler = async (args, ctx) => {
  const [sub, ...rest] = args;
  if (sub === "list") {
    parseFlags(rest, {});
    const users = await withCliSql(ctx, (db) => listUsers(db, CLI_ACTOR));
    if (ctx.json) ctx.stdout(JSON.stringify(users.map(toJson)));
    else if (users.length === 0) ctx.stdout("No users.");
    else for (const u of users) ctx.stdout(`${u.id}  ${u.role.padEnd(8)}  ${(u.disabled ? "disabled" : "active").padEnd(8)}  ${u.email}${u.sso ? "  (sso)" : ""}`);
    return 0;
  }
  if (sub === "sign-out" || sub === "reset-password") return sub === "sign-out" ? signOut(rest, ctx) : resetPassword(rest, ctx);
  if (sub !== "create") throw new CliError(USAGE, 2);
  const { values } = parseFlags(rest, { email: { type: "string" }, role: { type: "string" }, name: { type: "string" } });
  const email = requireFlag(values.email, "email");
  const role = requireFlag(values.role, "role");
  if (!isRole(role)) throw new CliError(`--role must be one of ${ROLES.join(", ")}`, 2);
  // A password piped on stdin is used as is; on a terminal one is generated and printed once.
  const piped = ctx.stdinIsTTY ? undefined : storableInput(await ctx.readStdin(), "the password on stdin").replace(/\r?\n$/, "");
  const password = piped === undefined || piped === "" ? undefined : piped;
  // Creating loads the password hasher and Prisma; listing loads neither.
  const { createUser } = await import("@/lib/users/users");
  const { user, generatedPassword } = await withCliDatabase(ctx, (db) =>
    createUser(db, CLI_ACTOR, { email, role, name: values.name, password }),
  );
  if (ctx.json) {
    ctx.stdout(JSON.stringify({ id: user.id, email: user.email, role: user.role, password: generatedPassword }));
  } else {
    ctx.stdout(`Created ${user.role} ${user.email} (${user.id}).`);
    if (generatedPassword) ctx.stdout(`Password (shown once): ${generatedPassword}`);
  }
  return 0;
};

/** The user with this email (as typed at sign-in: trimmed, lower case), or a clear error. */
async function userIdOf(db: Db, email: string): Promise<string> {
  const user = await db.user.findUnique({ where: { email: email.trim().toLowerCase() }, select: { id: true } });
  if (!user) throw new CliError(`No user with email ${email.trim()}.`, 1);
  return user.id;
}

function emailArgument(rest: string[], sub: string): string {
  const { positionals } = parseFlags(rest, {}, 1);
  const email = positionals[0];
  if (!email) throw new CliError(`usage: bulkhead user ${sub} EMAIL`, 2);
  return email;
}

/** Ends every dashboard session of the user (e.g. a lost laptop); audited as the CLI. */
async function signOut(rest: string[], ctx: CliContext): Promise<number> {
  const email = emailArgument(rest, "sign-out");
  const { endUserSessions } = await import("@/lib/auth/manage-sessions");
  const { ended, email: found } = await withCliDatabase(ctx, async (db) => endUserSessions(db, CLI_ACTOR, await userIdOf(db, email)));
  ctx.stdout(ctx.json ? JSON.stringify({ email: found, ended }) : `Ended ${ended} session${ended === 1 ? "" : "s"} of ${found}.`);
  return 0;
}

/** Sets a user's password (from stdin, or generated and printed once) and ends all their sessions. */
async function resetPassword(rest: string[], ctx: CliContext): Promise<number> {
  const email = emailArgument(rest, "reset-password");
  const piped = ctx.stdinIsTTY ? undefined : storableInput(await ctx.readStdin(), "the password on stdin").replace(/\r?\n$/, "");
  const password = piped === undefined || piped === "" ? undefined : piped;
  const { resetUserPassword } = await import("@/lib/auth/change-password");
  const result = await withCliDatabase(ctx, async (db) => resetUserPassword(db, CLI_ACTOR, await userIdOf(db, email), password));
  if (ctx.json) {
    ctx.stdout(JSON.stringify({ email: result.email, endedSessions: result.endedSessions, password: result.generatedPassword }));
  } else {
    ctx.stdout(`Password of ${result.email} set; ${result.endedSessions} session${result.endedSessions === 1 ? "" : "s"} ended.`);
    if (result.generatedPassword) ctx.stdout(`Password (shown once): ${result.generatedPassword}`);
  }
  return 0;
}
