/** The credential vault: upstream secrets sealed at rest, injected by the proxy, never read back. */
export { addCredential } from "./add-credential";
export { listCredentials, listCredentialsPage } from "./list-credentials";
export { rotateCredential } from "./rotate-credential";
export { deleteCredential } from "./delete-credential";
export { bindCredential } from "./bind-credential";
export { selectCredential, serves, canonicalEnvironments } from "./binding";
export { loadCredentialsForInjection, CredentialLoadError, type InjectableCredential, type CredentialSet } from "./load-for-injection";
export { loadRetiredSecrets, pruneRetiredSecrets, NO_RETIRED_SECRETS, type RetiredSecretSet } from "./retired-secrets";
export { renderHeader, parseHeaderTemplate, FORBIDDEN_HEADER_NAMES, type SecretEncoding } from "./header-template";
export { normalizeHost, serviceKey, DEFAULT_PORTS, SCHEMES, type Scheme } from "./host";
export { addCredentialInput, rotateCredentialInput, bindCredentialInput, credentialIdSchema, type AddCredentialInput, type BindCredentialInput } from "./schemas";
export { SECRET_MASK, type CredentialView } from "./view";
