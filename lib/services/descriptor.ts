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
  const parsed = serviceDescriptorSchema.safeParse(raw);
  if (!parsed.success) {
    return { ok: false, errors: withoutLooserBounds(parsed.error.issues).map((i) => `${i.path.join(".") || "service"}: ${apiIssueSentence(i)}`) };
  }
  return { ok: true, descriptor: raw as ServiceDescriptorInput, id: parsed.data.id };
}
