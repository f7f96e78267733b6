import { describe, expect, it } from "vitest";
import { isAgentCredentialHeader } from "@/proxy-worker/proxy/agent-credentials";

describe("headers that carry an agent's own credentials", () => {
  it.each([
    "Authorization", "cookie", "Project-Access-Token", "Team-Access-Token", "X-Auth-Token", "PRIVATE-TOKEN", "Job-Token", "X-Api-Key",
    "X-API-KEY", "api-key", "apikey", "DD-API-KEY", "x-goog-api-key", "X-Amz-Security-Token",
    "Ocp-Apim-Subscription-Key", "X-Vault-Token", "x-client-secret", "x_access_token", "x-db-password",
    "Neon-Connection-String", "neon_connection_string", "X-Connection-String", "X-Db-Credentials", "x-credential",
  ])("%s is never forwarded", (name) => {
    expect(isAgentCredentialHeader(name)).toBe(true);
  });

  it.each(["content-type", "accept", "x-request-id", "idempotency-key", "x-tokens-used", "user-agent", "x-session-id", "etag", "if-match", "x-github-api-version"])("%s passes", (name) => {
    expect(isAgentCredentialHeader(name)).toBe(false);
  });
});
