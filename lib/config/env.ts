import { z } from "zod";

/**
 * The one place that reads process.env. Each process validates the part it needs once at start;
 * a missing or malformed variable stops start-up with a message that names it and says how to fix it.
 */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Bulkhead configuration is invalid:\n${problems.map((p) => `  - ${p}`).join("\n")}\nSee .env.example for every variable.`);
    this.name = "ConfigError";
  }
}

export const port = z.coerce
  .number({ error: "must be a port number" })
  .int("must be a whole number")
  .min(1, "must be between 1 and 65535")
  .max(65535, "must be between 1 and 65535");

export const host = z.string().min(1, "must not be empty");

export const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === "" ? undefined : v.trim()));

export const postgresUrl = z
  .string()
  .refine((v) => /^postgres(ql)?:\/\//.test(v), "must be a postgres:// or postgresql:// URL");

/**
 * zod's own wording for a value that is not a number ("Invalid input: expected number, received
 * NaN", for BULKHEAD_HOLD_TIMEOUT_SECONDS=5m) says nothing about the variable; said plainly.
 */
function readable(issue: z.core.$ZodIssue): string {
  // Only zod's default wording: a schema's own message ("must be a port number") stays.
  if (issue.code === "invalid_type" && issue.expected === "number" && issue.message.startsWith("Invalid input")) {
    return "must be a number, written in digits (e.g. 300), without a unit";
  }
  return issue.message;
}

/**
 * Parses `source` (default process.env) with `schema`; throws ConfigError naming each bad
 * variable. The message never repeats a value: variables hold secrets (AUTH_SECRET, the master
 * key, passwords inside DATABASE_URL), and start-up errors end up in logs and terminals.
 */
export function parseEnv<T extends z.ZodType>(
  schema: T,
  source: Record<string, string | undefined> = process.env,
): z.output<T> {
  // reportInput stays off, so no issue carries the value either.
  const result = schema.safeParse(source);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const name = issue.path.join(".") || "(environment)";
    // Never the value: many variables are secrets or URLs with passwords, and this message goes
    // to terminals and logs. The name and the rule are enough to fix it.
    const hint = source[name] === undefined ? "it is not set" : "it is set; the value is not shown";
    return `${name} ${readable(issue)} (${hint})`;
  });
  throw new ConfigError(problems);
}
