import { isRole, ROLES } from "@/lib/auth/roles";
import { createUser } from "@/lib/users/users";
import { parseFlags, requireFlag } from "../args";
import { CliError, type CommandHandler } from "../context";
import { CLI_ACTOR, withCliDatabase } from "../database";

export const userCommand: CommandHandler = async (args, ctx) => {
  const [sub, ...rest] = args;
  if (sub !== "create") throw new CliError("usage: bulkhead user create --email E --role R [--name N]", 2);
  const { values } = parseFlags(rest, { email: { type: "string" }, role: { type: "string" }, name: { type: "string" } });
  const email = requireFlag(values.email, "email");
  const role = requireFlag(values.role, "role");
  if (!isRole(role)) throw new CliError(`--role must be one of ${ROLES.join(", ")}`, 2);
  // A password piped on stdin is used as is; on a terminal one is generated and printed once.
  const piped = ctx.stdinIsTTY ? undefined : (await ctx.readStdin()).replace(/\r?\n$/, "");
  const password = piped === undefined || piped === "" ? undefined : piped;
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
