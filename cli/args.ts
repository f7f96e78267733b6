import { parseArgs, type ParseArgsConfig } from "node:util";
import { CliError } from "./context";

/** node:util parseArgs with strict options; unknown flags become a one-line CliError. */
export function parseFlags<T extends NonNullable<ParseArgsConfig["options"]>>(args: string[], options: T, positionals = 0) {
  try {
    const parsed = parseArgs({ args, options, strict: true, allowPositionals: positionals > 0 });
    if (parsed.positionals.length > positionals) {
      throw new CliError(`unexpected argument "${parsed.positionals[positionals]}"`, 2);
    }
    return parsed;
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(error instanceof Error ? error.message : String(error), 2);
  }
}

export function requireFlag(value: string | undefined, name: string): string {
  if (value === undefined || value === "") throw new CliError(`--${name} is required`, 2);
  return value;
}
