import type { Db } from "@/lib/db/client";
import { buildRegistry } from "./build-registry";
import { INVENTORY_SETTING } from "./inventory";

export { buildRegistry, type RegistryProblems } from "./build-registry";

export async function loadRegistry(db: Pick<Db, "service" | "setting">) {
  const [services, inventory] = await Promise.all([
    db.service.findMany({ select: { name: true, descriptorYaml: true }, orderBy: { name: "asc" } }),
    db.setting.findUnique({ where: { key: INVENTORY_SETTING } }),
  ]);
  return buildRegistry(services, typeof inventory?.value === "string" ? inventory.value : null);
}
