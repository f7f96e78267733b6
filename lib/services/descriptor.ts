import { apiIssueSentence, withoutLooserBounds } from "@/lib/http/form-errors";
import { readYaml } from "@/lib/semantics/yaml-read";
import { serviceDescriptorSchema, type ServiceDescriptorInput } from "@/lib/semantics/descriptors/schema";

/** One custom service descriptor written as a YAML mapping (the format of docs/policy.md). */
export function parseServiceDescriptorYaml(
  text: string,
): { ok: true; descriptor: ServiceDescriptorInput; id: string } | { ok: false; errors: string[] } {
  const read = readYaml(text, "service");
  if (!read.ok) return read;
  const raw = read.value;
  // Two shapes people paste that are not one descriptor: nothing at all, and the `services:` list
  // of a services file (`bulkhead policy explain --services`), which reads here as unknown fields.
  if (raw === null || raw === undefined || (typeof raw === "string" && raw.trim() === "")) {
    return { ok: false, errors: ["service: the document is empty: give the service's id, hosts and protocol (docs/policy.md lists every field)"] };
  }
  if (typeof raw === "object" && !Array.isArray(raw) && Object.keys(raw).length === 1 && Array.isArray((raw as Record<string, unknown>).services)) {
    return { ok: false, errors: ["service: one service per save, its fields (id, hosts, protocol, ...) at the top level: paste the entry without the services: list around it"] };
  }
  const parsed = serviceDescriptorSchema.safeParse(raw);
  if (!parsed.success) {
    return { ok: false, errors: withoutLooserBounds(parsed.error.issues).map((i) => `${i.path.join(".") || "service"}: ${apiIssueSentence(i)}`) };
  }
  return { ok: true, descriptor: raw as ServiceDescriptorInput, id: parsed.data.id };
}
