import { z } from "zod";
import { formatTemplate, parseHeaderTemplate, secretProblem, type SecretEncoding } from "./header-template";
import { canonicalEnvironments } from "./binding";
import { normalizeHost, SCHEMES } from "./host";
import { wholeNumber } from "@/lib/validation/whole-number";

/** Input schemas shared by the domain functions, route handlers, server actions and OpenAPI. */

export const credentialIdSchema = z.uuid({ error: "Not a valid id." });

export const credentialNameSchema = z
  .string({ error: "Enter a name." })
  .trim()
  .min(2, "Name must be at least 2 characters.")
  .max(64, "Name must be at most 64 characters.")
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9._-]*$/, "Use letters, digits, dot, dash and underscore; start with a letter or digit.");

export const hostSchema = z
  .string({ error: "Enter the service host." })
  .meta({ description: "Host name, IPv4 dotted quad or IPv6 literal; no scheme, userinfo, port or path.", examples: ["api.github.com"] })
  .transform((value, ctx) => {
  const result = normalizeHost(value);
  if (!result.ok) {
    ctx.addIssue({ code: "custom", message: result.message });
    return z.NEVER;
  }
  return result.host;
});

export const portSchema = wholeNumber(1, 65535, { type: "The port must be a whole number.", range: "The port must be between 1 and 65535." });

export const headerTemplateSchema = z
  .string({ error: "Enter a header template." })
  .meta({
    description: "`Header-Name: value` with exactly one {secret} or {secret:base64} placeholder.",
    examples: ["Authorization: Bearer {secret}", "Authorization: Basic {secret:base64}"],
  })
  .transform((value, ctx) => {
  const result = parseHeaderTemplate(value);
  if (!result.ok) {
    ctx.addIssue({ code: "custom", message: result.message });
    return z.NEVER;
  }
  return formatTemplate(result.template);
});

/**
 * The secret's own checks (length, no control characters). Whether it suits the template is
 * checked where both are known. No message ever contains the secret.
 */
export const secretSchema = z
  .string({ error: "Enter the secret." })
  .superRefine((value, ctx) => {
    // "base64" is the weaker rule; the template-specific rule is applied afterwards.
    const problem = secretProblem(value, "base64");
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  })
  .meta({ writeOnly: true, format: "password", description: "Write-only: never returned by any API." });

/** A semantic service id, as in descriptors and policies ("railway", "github", a custom id, "unknown"). */
export const serviceIdSchema = z
  .string({ error: "Enter the service id." })
  .trim()
  .toLowerCase()
  .regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, "The service is a service id such as railway, github or unknown.")
  .meta({ description: "The service the credential serves. Omitted: the service its host belongs to (`unknown` for hosts no service describes).", examples: ["railway"] });

/**
 * The environments a credential serves: names (as the inventory tags them) or "*" for every
 * environment of its service, as a list or one string separated by spaces or commas. Required:
 * a credential whose environments nobody stated is never injected. Stored canonical (sorted,
 * lower-case, space-separated).
 */
export const environmentsSchema = z
  .union([z.string({ error: "List the environments the credential serves." }).max(2000, "The environments are at most 2000 characters."), z.array(z.string().max(64)).max(32)], { error: "List the environments the credential serves." })
  .transform((value, ctx) => {
    const result = canonicalEnvironments(value);
    if (!result.ok) {
      ctx.addIssue({ code: "custom", message: result.message });
      return z.NEVER;
    }
    return result.text;
  })
  .meta({ description: "Environments the credential serves, e.g. `staging` or `staging, development`; `*` for every environment of its service. It is injected only for actions in these environments.", examples: ["staging"] });

export const addCredentialInput = z
  .object({
    name: credentialNameSchema,
    scheme: z.enum(SCHEMES, { error: "The scheme must be http or https." }).default("https"),
    host: hostSchema,
    /** Defaults to 443 for https and 80 for http. */
    port: portSchema.optional(),
    serviceId: serviceIdSchema.optional(),
    environments: environmentsSchema,
    headerTemplate: headerTemplateSchema,
    secret: secretSchema,
  })
  .superRefine((value, ctx) => {
    const encoding = encodingOf(value.headerTemplate);
    const problem = encoding ? secretProblem(value.secret, encoding) : null;
    if (problem) ctx.addIssue({ code: "custom", path: ["secret"], message: problem });
  });
export type AddCredentialInput = z.input<typeof addCredentialInput>;

export const rotateCredentialInput = z.object({ secret: secretSchema });

export const bindCredentialInput = z.object({ serviceId: serviceIdSchema.optional(), environments: environmentsSchema });
export type BindCredentialInput = z.input<typeof bindCredentialInput>;

export function encodingOf(template: string): SecretEncoding | null {
  const parsed = parseHeaderTemplate(template);
  return parsed.ok ? parsed.template.encoding : null;
}
