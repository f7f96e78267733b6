/**
 * The service registry: validated descriptors indexed by host. A host claimed twice is a
 * configuration error, caught when the registry is built, not when a request arrives.
 */
import { apiIssueSentence, withoutLooserBounds } from "@/lib/http/form-errors";
import { readYaml } from "@/lib/semantics/yaml-read";
import { z } from "zod";
import { builtInDescriptors } from "@/lib/semantics/descriptors/index";
import {
  serviceDescriptorSchema,
  type ServiceDescriptor,
  type ServiceDescriptorInput,
} from "@/lib/semantics/descriptors/schema";

export type ServiceMatch =
  | { kind: "service"; descriptor: ServiceDescriptor }
  | { kind: "none" }
  /** The host belongs to a service, but not on this scheme/port: never treated as "unknown". */
  | { kind: "mismatch"; descriptor: ServiceDescriptor; reason: string };

export interface ServiceRegistry {
  readonly services: readonly ServiceDescriptor[];
  match(host: string, port: number, scheme: "http" | "https"): ServiceMatch;
  get(id: string): ServiceDescriptor | undefined;
}

export class RegistryError extends Error {
  constructor(readonly errors: string[]) {
    super(`invalid service registry: ${errors.join("; ")}`);
    this.name = "RegistryError";
  }
}

function formatIssues(prefix: string, error: z.ZodError): string[] {
  return withoutLooserBounds(error.issues).map((i) => `${prefix}${i.path.length ? `.${i.path.join(".")}` : ""}: ${apiIssueSentence(i)}`);
}

/** Validates descriptors and indexes them. Throws `RegistryError` on invalid or conflicting input. */
export function createRegistry(inputs: readonly ServiceDescriptorInput[]): ServiceRegistry {
  const errors: string[] = [];
  const services: ServiceDescriptor[] = [];
  inputs.forEach((input, i) => {
    const parsed = serviceDescriptorSchema.safeParse(input);
    if (parsed.success) services.push(parsed.data);
    else errors.push(...formatIssues(`services[${i}]`, parsed.error));
  });
  const byId = new Map<string, ServiceDescriptor>();
  const exact = new Map<string, ServiceDescriptor>();
  const wildcard: Array<{ suffix: string; descriptor: ServiceDescriptor }> = [];
  for (const d of services) {
    if (byId.has(d.id)) errors.push(`service "${d.id}" is defined twice`);
    byId.set(d.id, d);
    for (const host of d.hosts) {
      const suffix = host.startsWith("*.") ? host.slice(1) : null;
      const taken = suffix === null ? exact.get(host) : wildcard.find((w) => w.suffix === suffix)?.descriptor;
      if (taken) errors.push(`host "${host}" is claimed by both "${taken.id}" and "${d.id}"`);
      if (suffix === null) exact.set(host, d);
      else wildcard.push({ suffix, descriptor: d });
    }
  }
  if (errors.length > 0) throw new RegistryError(errors);
  // Longest suffix first, so "*.eu.example.com" wins over "*.example.com".
  wildcard.sort((a, b) => b.suffix.length - a.suffix.length);

  const lookup = (host: string): ServiceDescriptor | undefined =>
    exact.get(host) ?? wildcard.find((w) => host.endsWith(w.suffix) && host.length > w.suffix.length)?.descriptor;

  return {
    services,
    get: (id) => byId.get(id),
    match(host, port, scheme) {
      const descriptor = lookup(host);
      if (!descriptor) return { kind: "none" };
      if (descriptor.scheme !== scheme) {
        return { kind: "mismatch", descriptor, reason: `service ${descriptor.id} is reached over ${descriptor.scheme} only` };
      }
      const ports = descriptor.ports ?? [scheme === "https" ? 443 : 80];
      if (!ports.includes(port)) {
        return { kind: "mismatch", descriptor, reason: `port ${port} is not a port of service ${descriptor.id}` };
      }
      return { kind: "service", descriptor };
    },
  };
}

let builtIn: ServiceRegistry | undefined;

/** The built-in services (Railway, GitHub). */
export function defaultRegistry(): ServiceRegistry {
  builtIn ??= createRegistry(builtInDescriptors);
  return builtIn;
}

/** Built-ins plus custom descriptors; a custom descriptor with a built-in's id replaces it. */
export function registryWith(custom: readonly ServiceDescriptorInput[]): ServiceRegistry {
  const overridden = new Set(custom.map((c) => (c as { id?: unknown }).id));
  return createRegistry([...builtInDescriptors.filter((d) => !overridden.has(d.id)), ...custom]);
}

const servicesFileSchema = z.strictObject({ services: z.array(z.unknown()) });

/** Loads custom services from YAML: `services: [ { id, hosts, protocol, … } ]`. */
export function parseServicesYaml(
  text: string,
): { ok: true; descriptors: ServiceDescriptorInput[] } | { ok: false; errors: string[] } {
  const read = readYaml(text, "services file");
  if (!read.ok) return read;
  const value = read.value;
  // One descriptor, as the Services & Credentials page takes it, where a file of them was expected.
  if (value !== null && typeof value === "object" && !Array.isArray(value) && !("services" in value) && "id" in value && "protocol" in value) {
    return { ok: false, errors: ["services file: this is one service descriptor; a services file lists them under `services:` (services: [ {id: …, hosts: …}, … ])"] };
  }
  const file = servicesFileSchema.safeParse(value);
  if (!file.success) return { ok: false, errors: formatIssues("services file", file.error) };
  const errors: string[] = [];
  const descriptors: ServiceDescriptorInput[] = [];
  file.data.services.forEach((raw, i) => {
    const parsed = serviceDescriptorSchema.safeParse(raw);
    if (parsed.success) descriptors.push(raw as ServiceDescriptorInput);
    else errors.push(...formatIssues(`services[${i}]`, parsed.error));
  });
  return errors.length > 0 ? { ok: false, errors } : { ok: true, descriptors };
}
