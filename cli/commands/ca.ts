import { ensureCertificateAuthority, rotateCertificateAuthority, type CaCertificateInfo } from "@/lib/tls/ca-store";
import { CliError, type CommandHandler } from "../context";
import { usageLine } from "../help";
import { CLI_ACTOR, withCliKeys } from "../database";

const USAGE = usageLine("ca");

function toJson(ca: CaCertificateInfo): string {
  return JSON.stringify({ id: ca.id, certPem: ca.certPem, notAfter: ca.notAfter.toISOString(), fingerprintSha256: ca.fingerprintSha256 });
}

/**
 * `ca cert`: the interception CA certificate alone on stdout (created on first use), for
 * `curl --cacert` and agents' trust stores. `ca rotate`: a new CA at once; the old one is retired.
 */
export const caCommand: CommandHandler = async (args, ctx) => {
  const [sub, ...rest] = args;
  if ((sub !== "cert" && sub !== "rotate") || rest.length > 0) throw new CliError(USAGE, 2);

  if (sub === "cert") {
    const ca = await withCliKeys(ctx, (db, keys) => ensureCertificateAuthority(db, keys.workerKey, new Date(), CLI_ACTOR));
    if (ca.created) ctx.stderr(`Created interception CA ${ca.id} (SHA-256 ${ca.fingerprintSha256}).`);
    ctx.stdout(ctx.json ? toJson(ca) : ca.certPem.trimEnd());
    return 0;
  }

  const ca = await withCliKeys(ctx, (db, keys) => rotateCertificateAuthority(db, CLI_ACTOR, keys.workerKey));
  if (ctx.json) {
    ctx.stdout(toJson(ca));
  } else {
    ctx.stdout(`New interception CA ${ca.id} (SHA-256 ${ca.fingerprintSha256}), valid until ${ca.notAfter.toISOString()}.`);
    // A running worker loads the new CA itself when its policy snapshot names it (no restart).
    ctx.stdout("The previous CA is retired: give agents the new certificate (`bulkhead ca cert`); a running proxy worker signs new tunnels with it at once.");
  }
  return 0;
};
