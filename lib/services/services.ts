import { z } from "zod";
import type { Db } from "@/lib/db/client";
import { recordAuditEvent } from "@/lib/audit/record";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { requireStepUp } from "@/lib/auth/step-up";
import { AppError } from "@/lib/errors/app-error";
import { registryWith } from "@/lib/semantics/registry";
import { parseAllowInternal } from "@/lib/net/allow-internal";
import { parseHost } from "@/lib/net/host";
import { normalizeLineEndings } from "@/lib/validation/line-endings";
import { parseServiceDescriptorYaml } from "./descriptor";
import type { ServiceDescriptorInput } from "@/lib/semantics/descriptors/schema";

export async function listCustomServices(db: Db, actor: Actor) {
  assertCan(actor, "read");
  return db.service.findMany({ orderBy: { name: "asc" }, select: { id: true, name: true, descriptorYaml: true, updatedAt: true } });
}

const SERVICES_LOCK = 0x6268_7376; // "bhsv"

/**
 * Adds or replaces a custom service from its YAML descriptor (keyed by its id). The whole set
 * must still form a valid registry: two services claiming one host are refused here, not
 * discovered later by a worker.
 */
export async function saveCustomService(db: Db, actor: Actor, sentYaml: string): Promise<{ name: string }> {
  assertCan(actor, "settings:write");
  const descriptorYaml = normalizeLineEndings(sentYaml);
  if (descriptorYaml.length > 200_000) throw new AppError("INVALID_INPUT", "The descriptor is too large.");
  const parsed = parseServiceDescriptorYaml(descriptorYaml);
  if (!parsed.ok) throw new AppError("INVALID_INPUT", "The service descriptor is not valid.", { details: { fieldErrors: { descriptorYaml: parsed.errors } } });
  const unusable = unusableEndpoints(parsed.descriptor);
  if (unusable.length > 0) throw new AppError("INVALID_INPUT", "The service descriptor is not valid.", { details: { fieldErrors: { descriptorYaml: unusable } } });
  // A descriptor decides what every policy means (an effect, an internal address range), so
  // changing one can widen what tasks do without a human: step-up, like a widening policy.
  const stepUp = requireStepUp(actor, "change a service descriptor");
  return db.$transaction(async (tx) => {
    // Saves are taken one at a time: each checks the set as the others left it. Checked side by
    // side, two services claiming one host both passed (neither saw the other's uncommitted row),
    // and the stored set conflicted: every custom service fell back to the built-ins.
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(${SERVICES_LOCK}::int)`;
    const others = await tx.service.findMany({ where: { name: { not: parsed.id } }, select: { descriptorYaml: true } });
    const all: ServiceDescriptorInput[] = [parsed.descriptor];
    for (const o of others) {
      const p = parseServiceDescriptorYaml(o.descriptorYaml);
      if (p.ok) all.push(p.descriptor);
    }
    try {
      registryWith(all);
    } catch (error) {
      throw new AppError("CONFLICT", error instanceof Error ? error.message : "The services conflict.", { details: { fieldErrors: { descriptorYaml: [String(error instanceof Error ? error.message : error)] } } });
    }
    const existing = await tx.service.findUnique({ where: { name: parsed.id }, select: { id: true } });
    await tx.service.upsert({ where: { name: parsed.id }, create: { name: parsed.id, descriptorYaml }, update: { descriptorYaml } });
    await recordAuditEvent(tx, { type: existing ? "service.updated" : "service.added", actor, data: { service: parsed.id, descriptorYaml, stepUp } });
    return { name: parsed.id };
  });
}

export async function deleteCustomService(db: Db, actor: Actor, name: string): Promise<void> {
  assertCan(actor, "settings:write");
  const parsedName = z.string().min(1).max(100).safeParse(name);
  if (!parsedName.success) throw new AppError("NOT_FOUND", "No such service.");
  const stepUp = requireStepUp(actor, "delete a service descriptor");
  await db.$transaction(async (tx) => {
    const r = await tx.service.deleteMany({ where: { name: parsedName.data } });
    if (r.count === 0) throw new AppError("NOT_FOUND", "No such service.");
    await recordAuditEvent(tx, { type: "service.deleted", actor, data: { service: parsedName.data, stepUp } });
  });
}

/**
 * What would be saved but never work, refused when saved instead of when a request comes: an
 * internal address range the proxy refuses (broader than /8, not a plain CIDR, IPv4 inside
 * IPv6), found at request time with nothing shown on the Services page; and a host written as an
 * IP address in a spelling other than the canonical one (`2130706433`, `0x7f.0.0.2`,
 * `127.0.0.03`), which requests, canonicalised, never matched, so they were judged as the
 * unknown service (or another service claiming that address).
 */
export function unusableEndpoints(descriptor: ServiceDescriptorInput): string[] {
  const problems: string[] = [];
  const internal = parseAllowInternal(descriptor.proxy?.internalAddresses ?? []);
  if (!internal.ok) problems.push(`proxy.internalAddresses: ${internal.reason.replace(/^allowInternal entry/, "entry")}`);
  for (const [i, host] of (descriptor.hosts ?? []).entries()) {
    if (host.includes("*")) continue;
    const parsed = parseHost(host.toLowerCase());
    if (parsed.kind !== "ip") continue;
    const written = host.toLowerCase().replace(/^\[|\]$/g, "").replace(/\.$/, "");
    if (written !== parsed.address) problems.push(`hosts.${i}: write the address ${host} as ${parsed.family === 6 ? `[${parsed.address}]` : parsed.address}, as requests to it are read`);
  }
  return problems;
}
