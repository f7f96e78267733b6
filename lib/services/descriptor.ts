import { parseDocument } from "yaml";
import { serviceDescriptorSchema, type ServiceDescriptorInput } from "@/lib/semantics/descriptors/schema";

/** One custom service descriptor written as a YAML mapping (the format of docs/policy.md). */
export function parseServiceDescriptorYaml(
  text: string,
): { ok: true; descriptor: ServiceDescriptorInput; id: string } | { ok: false; errors: string[] } {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) return { ok: false, errors: doc.errors.map((e) => e.message) };
  const raw: unknown = doc.toJS({ maxAliasCount: 100 });
  const parsed = serviceDescriptorSchema.safeParse(raw);
  if (!parsed.success) {
    return { ok: false, errors: parsed.error.issues.map((i) => `${i.path.join(".") || "service"}: ${i.message}`) };
  }
  return { ok: true, descriptor: raw as ServiceDescriptorInput, id: parsed.data.id };
}
