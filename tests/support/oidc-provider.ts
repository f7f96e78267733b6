import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, SignJWT, type JWK } from "jose";

/**
 * A small OpenID Connect provider on loopback, standing in for Okta or Keycloak in tests: real
 * discovery, JWKS, authorization (it logs in whoever the test says, at once), token endpoint with
 * PKCE and client authentication, and RS256 ID tokens. The test decides the claims of the next
 * login, including the ones an attacker controls at a permissive provider (email, email_verified).
 */
export interface OidcProvider {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Claims of the ID token for the next authorization (sub is required). */
  nextLogin(claims: Record<string, unknown> & { sub: string }): void;
  /** The authorization requests seen (query parameters), newest last. */
  authorizations: URLSearchParams[];
  close(): Promise<void>;
}

interface Grant {
  claims: Record<string, unknown>;
  nonce: string | null;
  challenge: string | null;
  redirectUri: string;
}

export async function startOidcProvider(options: { clientId?: string; clientSecret?: string } = {}): Promise<OidcProvider> {
  const clientId = options.clientId ?? "bulkhead-test";
  const clientSecret = options.clientSecret ?? randomBytes(16).toString("hex");
  const { privateKey, publicKey } = await generateKeyPair("RS256");
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: "test-key", alg: "RS256", use: "sig" };
  const grants = new Map<string, Grant>();
  const authorizations: URLSearchParams[] = [];
  let next: Record<string, unknown> | null = null;
  let issuer = "";

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      void handle(req, Buffer.concat(chunks).toString("utf8"), res).catch((error: unknown) => {
        res.writeHead(500, { "content-type": "text/plain" });
        res.end(String(error));
      });
    });
  });

  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(JSON.stringify(body));
  };

  async function handle(req: http.IncomingMessage, body: string, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", issuer);
    if (url.pathname === "/.well-known/openid-configuration") {
      return json(res, 200, {
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        userinfo_endpoint: `${issuer}/userinfo`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ["code"],
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: ["RS256"],
        code_challenge_methods_supported: ["S256"],
        token_endpoint_auth_methods_supported: ["client_secret_basic"],
      });
    }
    if (url.pathname === "/jwks") return json(res, 200, { keys: [jwk] });
    if (url.pathname === "/authorize") {
      authorizations.push(url.searchParams);
      const redirectUri = url.searchParams.get("redirect_uri") ?? "";
      if (url.searchParams.get("client_id") !== clientId || !next) return json(res, 400, { error: "invalid_request" });
      const code = randomBytes(16).toString("hex");
      grants.set(code, { claims: next, nonce: url.searchParams.get("nonce"), challenge: url.searchParams.get("code_challenge"), redirectUri });
      next = null;
      const back = new URL(redirectUri);
      back.searchParams.set("code", code);
      const state = url.searchParams.get("state");
      if (state) back.searchParams.set("state", state);
      back.searchParams.set("iss", issuer);
      res.writeHead(302, { location: back.toString() });
      return void res.end();
    }
    if (url.pathname === "/token" && req.method === "POST") {
      const form = new URLSearchParams(body);
      const basic = Buffer.from((req.headers.authorization ?? "").replace(/^Basic /, ""), "base64").toString("utf8");
      if (basic !== `${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`) return json(res, 401, { error: "invalid_client" });
      const grant = grants.get(form.get("code") ?? "");
      grants.delete(form.get("code") ?? "");
      if (!grant || form.get("redirect_uri") !== grant.redirectUri) return json(res, 400, { error: "invalid_grant" });
      const verifier = form.get("code_verifier") ?? "";
      if (grant.challenge && createHash("sha256").update(verifier).digest("base64url") !== grant.challenge) return json(res, 400, { error: "invalid_grant" });
      const now = Math.floor(Date.now() / 1000);
      const idToken = await new SignJWT({ ...grant.claims, ...(grant.nonce ? { nonce: grant.nonce } : {}) })
        .setProtectedHeader({ alg: "RS256", kid: "test-key" })
        .setIssuer(issuer)
        .setAudience(clientId)
        .setSubject(String(grant.claims.sub))
        .setIssuedAt(now)
        .setExpirationTime(now + 300)
        .sign(privateKey);
      return json(res, 200, { access_token: randomBytes(16).toString("hex"), token_type: "Bearer", expires_in: 300, id_token: idToken });
    }
    if (url.pathname === "/userinfo") return json(res, 200, {});
    json(res, 404, { error: "not_found" });
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer,
    clientId,
    clientSecret,
    authorizations,
    nextLogin(claims) {
      next = claims;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
