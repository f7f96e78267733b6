import { loadRetiredSecretsConfig } from "@/lib/config/retired-secrets";
import { listCredentials } from "@/lib/vault/list-credentials";
import type { CredentialView } from "@/lib/vault/view";
import { parseFlags, requireFlag } from "../args";
import { CliError, type CliContext, type CommandHandler } from "../context";
import { storableInput } from "../text-input";
import { usageLine } from "../help";
import { CLI_ACTOR, withCliDatabase, withCliKeys, withCliSql } from "../database";

// Changing credentials loads the vault's sealing code and Prisma; listing loads neither.
const vault = () => import("@/lib/vault");

const USAGE = usageLine("credential");

const toJson = (c: CredentialView & { problem?: string | null }) => ({
  id: c.id,
  name: c.name,
  service: c.service,
  serviceId: c.serviceId,
  environments: c.environments,
  ...(c.problem !== undefined ? { problem: c.problem } : {}),
  headerTemplate: c.headerTemplate,
  secret: c.secret,
  createdAt: c.createdAt.toISOString(),
  rotatedAt: c.rotatedAt?.toISOString() ?? null,
  lastUsedAt: c.lastUsedAt?.toISOString() ?? null,
});

/**
 * The secret comes only from stdin, never from a flag (flags end up in shell history and `ps`).
 * A terminal is refused rather than prompted, so nothing is echoed; one trailing newline (from
 * `echo` or a file) is dropped.
 */
async function readSecret(ctx: CliContext): Promise<string> {
  if (ctx.stdinIsTTY) {
    throw new CliError("refusing to read the secret from a terminal: pipe it on stdin, e.g. `bulkhead credential add ... < token.txt`", 2);
  }
  const secret = storableInput(await ctx.readStdin(), "the secret on stdin").replace(/\r?\n$/, "");
  if (secret === "") throw new CliError("the secret on stdin is empty", 2);
  return secret;
}

/** `--env staging --env production` or `--env staging,production`; "*" for every environment. */
function requireEnvironments(values: string[] | undefined): string[] {
  if (!values || values.length === 0) throw new CliError("--env is required: the environments the credential serves (e.g. --env staging), or --env '*' for every environment of its service", 2);
  // Commas separate names within one flag; a space is part of the name, which is then refused
  // (`--env 'staging eu'` bound "staging" and "eu").
  return values.flatMap((v) => v.split(",")).map((v) => v.trim());
}

const serving = (c: CredentialView) => (c.serviceId === null || c.environments.length === 0 ? "nothing (unbound)" : `${c.serviceId} in ${c.environments.join(", ")}`);

export const credentialCommand: CommandHandler = async (args, ctx) => {
  const [sub, ...rest] = args;
  // What `credential list` would say is wrong with it (an environment nothing places, say), said at once.
  const warnIfUnserved = async (context: CliContext, id: string) => {
    const listed = (await withCliSql(context, (db) => listCredentials(db, CLI_ACTOR))).find((c) => c.id === id);
    if (listed?.problem) context.stderr(`warning: credential ${listed.name}: ${listed.problem}`);
  };
  const say = (c: CredentialView, text: string) => ctx.stdout(ctx.json ? JSON.stringify(toJson(c)) : text);
  switch (sub) {
    case "add": {
      const { values } = parseFlags(rest, {
        name: { type: "string" },
        host: { type: "string" },
        scheme: { type: "string" },
        port: { type: "string" },
        service: { type: "string" },
        env: { type: "string", multiple: true },
        header: { type: "string" },
      });
      const name = requireFlag(values.name, "name");
      const host = requireFlag(values.host, "host");
      const headerTemplate = requireFlag(values.header, "header");
      const environments = requireEnvironments(values.env);
      const secret = await readSecret(ctx);
      const { addCredential } = await vault();
      // withCliKeys resolves the master key (BULKHEAD_MASTER_KEY or the data folder's key file)
      // and checks it against the data; the secret is sealed to the worker's key only.
      const credential = await withCliKeys(ctx, (db, keys) =>
        addCredential(db, CLI_ACTOR, keys.workerKey, { name, host, scheme: values.scheme as "http" | "https" | undefined, port: values.port, serviceId: values.service, environments, headerTemplate, secret }),
      );
      say(credential, `Added credential ${credential.name} (${credential.id}) for ${credential.service}, serving ${serving(credential)}.`);
      await warnIfUnserved(ctx, credential.id);
      return 0;
    }
    case "bind": {
      const { values, positionals } = parseFlags(rest, { service: { type: "string" }, env: { type: "string", multiple: true } }, 1);
      const id = positionals[0];
      if (!id) throw new CliError("usage: bulkhead credential bind ID [--service ID] --env ENV [--env ENV]...", 2);
      const environments = requireEnvironments(values.env);
      const { bindCredential } = await vault();
      const credential = await withCliDatabase(ctx, (db) => bindCredential(db, CLI_ACTOR, id, { serviceId: values.service, environments }));
      say(credential, `Credential ${credential.name} now serves ${serving(credential)}.`);
      await warnIfUnserved(ctx, credential.id);
      return 0;
    }
    case "list": {
      parseFlags(rest, {});
      const credentials = await withCliSql(ctx, (db) => listCredentials(db, CLI_ACTOR));
      if (ctx.json) ctx.stdout(JSON.stringify(credentials.map(toJson)));
      else if (credentials.length === 0) ctx.stdout("No credentials.");
      else for (const c of credentials) ctx.stdout(`${c.id}  ${c.name}  ${c.service}  ${serving(c)}  ${c.headerTemplate}${c.problem ? `  (${c.problem})` : ""}`);
      return 0;
    }
    case "rotate": {
      const { positionals } = parseFlags(rest, {}, 1);
      const id = positionals[0];
      if (!id) throw new CliError("usage: bulkhead credential rotate ID (new secret on stdin)", 2);
      const secret = await readSecret(ctx);
      // Checked before anything changes; the same bounds the dashboard and the worker use.
      const retired = loadRetiredSecretsConfig();
      const { rotateCredential } = await vault();
      const credential = await withCliKeys(ctx, (db, keys) => rotateCredential(db, CLI_ACTOR, keys.workerKey, id, secret, retired));
      say(credential, `Rotated credential ${credential.name}.`);
      return 0;
    }
    case "delete": {
      const { positionals } = parseFlags(rest, {}, 1);
      const id = positionals[0];
      if (!id) throw new CliError("usage: bulkhead credential delete ID", 2);
      const retired = loadRetiredSecretsConfig();
      const { deleteCredential } = await vault();
      const credential = await withCliDatabase(ctx, (db) => deleteCredential(db, CLI_ACTOR, id, retired));
      say(credential, `Deleted credential ${credential.name}.`);
      return 0;
    }
    default:
      throw new CliError(USAGE, 2);
  }
};
