/**
 * Building the service registry from stored YAML, apart from reading it (./registry-source.ts) and
 * from editing the inventory (./inventory.ts, which needs step-up and the password hasher): a
 * reader such as `bulkhead credential list` builds it from rows it fetched itself.
 */
import { createInventory, emptyInventory, parseInventoryYaml, type Inventory } from "@/lib/semantics/inventory";
import { defaultRegistry, registryWith, type ServiceRegistry } from "@/lib/semantics/registry";
import type { ServiceDescriptorInput } from "@/lib/semantics/descriptors/schema";
import { parseServiceDescriptorYaml } from "./descriptor";

export interface RegistryProblems {
  services: Array<{ name: string; errors: string[] }>;
  conflict: string | null;
  inventory: string[] | null;
}

/**
 * The service registry (built-ins plus custom services) and the environment inventory from
 * their stored YAML: the one construction the proxy and the dashboard's simulator share. An
 * invalid custom service is left out (its hosts become unknown services, which policies rarely
 * allow); conflicting services fall back to the built-ins; an invalid inventory is empty (every
 * resource counts as production). Problems are returned so callers can say so.
 */
export function buildRegistry(services: ReadonlyArray<{ name: string; descriptorYaml: string }>, inventoryYaml: string | null) {
  const problems: RegistryProblems = { services: [], conflict: null, inventory: null };
  const custom: ServiceDescriptorInput[] = [];
  for (const service of services) {
    const parsed = parseServiceDescriptorYaml(service.descriptorYaml);
    if (parsed.ok) custom.push(parsed.descriptor);
    else problems.services.push({ name: service.name, errors: parsed.errors });
  }
  let registry: ServiceRegistry;
  try {
    registry = registryWith(custom);
  } catch (error) {
    problems.conflict = error instanceof Error ? error.message : String(error);
    registry = defaultRegistry();
  }
  let inventory: Inventory = emptyInventory;
  if (inventoryYaml) {
    const parsed = parseInventoryYaml(inventoryYaml);
    if (parsed.ok) inventory = parsed.inventory;
    else {
      problems.inventory = parsed.errors;
      inventory = createInventory([]);
    }
  }
  return { registry, inventory, problems };
}
