import { z } from "zod";
import { addCredentialInput, bindCredentialInput, rotateCredentialInput } from "@/lib/vault/schemas";
import type { OpenApiOperation } from "../registry";
import { credentialSchema, nextCursor, pageQuery } from "../schemas";

const credentialResponse = z.object({ credential: credentialSchema });
const id = { id: "The credential's id (uuid)." };

export const credentialOperations: OpenApiOperation[] = [
  {
    method: "get",
    path: "/api/v1/credentials",
    operationId: "listCredentials",
    summary: "List upstream credentials (metadata only)",
    tags: ["credentials"],
    permission: "read",
    query: z.object(pageQuery),
    responses: { 200: { description: "Credentials by name, a page at a time; secrets are always masked.", schema: z.object({ credentials: z.array(credentialSchema), nextCursor }) } },
  },
  {
    method: "post",
    path: "/api/v1/credentials",
    operationId: "addCredential",
    summary: "Add an upstream credential",
    description:
      "Binds a secret to one service (scheme, host, port) and a header template with exactly one placeholder: " +
      "`{secret}` (inserted as is) or `{secret:base64}` (for Basic auth: store `user:password` and use " +
      "`Authorization: Basic {secret:base64}`). The secret is sealed at rest and can never be read back. " +
      "The credential serves one service (its host's) in the environments listed, and is injected only for actions of that " +
      "service in those environments that also lie inside the task's scope. Credentials for one endpoint serve disjoint environments.",
    tags: ["credentials"],
    permission: "credentials:write",
    body: addCredentialInput,
    responses: { 201: { description: "The credential's metadata.", schema: credentialResponse } },
  },
  {
    method: "post",
    path: "/api/v1/credentials/{id}/rotate",
    operationId: "rotateCredential",
    summary: "Replace a credential's secret",
    tags: ["credentials"],
    permission: "credentials:write",
    pathParams: id,
    body: rotateCredentialInput,
    responses: { 200: { description: "The credential's metadata.", schema: credentialResponse } },
  },
  {
    method: "post",
    path: "/api/v1/credentials/{id}/binding",
    operationId: "bindCredential",
    summary: "Declare the service and environments a credential serves",
    description: "Credentials stored before bindings existed serve nothing until this is done. The secret is untouched. 409 when another credential for the endpoint already serves one of the environments.",
    tags: ["credentials"],
    permission: "credentials:write",
    pathParams: id,
    body: bindCredentialInput,
    responses: { 200: { description: "The credential's metadata.", schema: credentialResponse } },
  },
  {
    method: "delete",
    path: "/api/v1/credentials/{id}",
    operationId: "deleteCredential",
    summary: "Delete a credential",
    tags: ["credentials"],
    permission: "credentials:write",
    pathParams: id,
    responses: { 200: { description: "The deleted credential's metadata.", schema: credentialResponse } },
  },
];
