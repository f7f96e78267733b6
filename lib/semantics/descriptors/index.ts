import { github } from "@/lib/semantics/descriptors/github";
import { railway } from "@/lib/semantics/descriptors/railway";
import type { ServiceDescriptorInput } from "@/lib/semantics/descriptors/schema";

/** Services Bulkhead knows out of the box. */
export const builtInDescriptors: readonly ServiceDescriptorInput[] = [railway, github];
