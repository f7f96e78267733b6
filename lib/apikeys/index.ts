/** Admin API keys: `bk_<prefix>_<secret>`, stored as SHA-256, acting with a role. */
export { createApiKey } from "./create-api-key";
export { listApiKeys, listApiKeysPage } from "./list-api-keys";
export { revokeApiKey } from "./revoke-api-key";
export { authenticateApiKey, type ApiKeyActor } from "./authenticate-api-key";
export { createApiKeyInput, apiKeyIdSchema, type CreateApiKeyInput } from "./schemas";
export { API_KEY_PATTERN, hashApiKey } from "./format";
export type { ApiKeyView } from "./view";
