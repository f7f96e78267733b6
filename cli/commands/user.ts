import { isRole, ROLES } from "@/lib/auth/roles";
import { listUsers, type UserSummary } from "@/lib/users/view";
import { parseFlags, requireFlag } from "../args";
import { CliError, type CommandHandler } from "../context";
import { storableInput } from "../text-input";
import { usageLine } from "../help";
import { CLI_ACTOR, withCliDatabase, withCliSql } from "../database";

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
