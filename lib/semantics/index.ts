/** Public surface of the semantics layer: canonical requests in, semantic actions out. */
export * from "@/lib/semantics/types";
export { canonicalizeRequest, canonicalUrl, type RawRequest, type CanonicalResult } from "@/lib/semantics/canonical";
export { classify, UNKNOWN_SERVICE } from "@/lib/semantics/classify";
export { classifyGraphql, classifyDocument } from "@/lib/semantics/graphql";
export { classifySql, loadSqlParser, sqlParserReady, type SqlAction, type SqlClassification } from "@/lib/semantics/sql";
export { classifyRest, methodEffect } from "@/lib/semantics/rest";
export { classifyMcp } from "@/lib/semantics/mcp";
export { classifySqlHttp } from "@/lib/semantics/sql-http";
export {
  createRegistry,
  defaultRegistry,
  registryWith,
  parseServicesYaml,
  RegistryError,
  type ServiceRegistry,
  type ServiceMatch,
} from "@/lib/semantics/registry";
export {
  createInventory,
  emptyInventory,
  parseInventoryYaml,
  resolveEnvironment,
  type Inventory,
  type InventoryEntryInput,
} from "@/lib/semantics/inventory";
export { serviceDescriptorSchema, type ServiceDescriptor, type ServiceDescriptorInput } from "@/lib/semantics/descriptors/schema";
export { builtInDescriptors } from "@/lib/semantics/descriptors/index";
export { compileGlob, compileGlobs, globMatch, type Matcher, type MatchStats } from "@/lib/semantics/glob";
export { normalizeResourceUri } from "@/lib/semantics/resource-uri";
