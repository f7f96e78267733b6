import { parseArgs, type ParseArgsConfig } from "node:util";
import { closest } from "@/lib/policy/suggest";
import { CliError } from "./context";

export type FlagOptions = NonNullable<ParseArgsConfig["options"]>;
type Options = FlagOptions;

/**
 * Flags whose empty value means "none" (free text, a search): every other flag given an empty or
 * blank value is refused, since a command would otherwise act as if it had not been given at all
 * (`--policy "$POLICY"` with the variable unset created a task with the deny-all policy,
 * `--output ""` wrote to standard output). `--scope` is refused by its command, with its own advice.
 */
const EMPTY_MEANS_NONE = new Set(["description", "query", "q", "scope"]);

/**
 * node:util parseArgs, strict, that also refuses a flag taking one value given more than once
 * (`--name a --name b`): parseArgs alone keeps the last one silently, so a command would act on a
 * value the person may not have meant. Flags declared `multiple` (`--env`, `--key`) repeat freely;
 * a boolean repeated says the same thing twice and is accepted. An empty value is refused
 * too (EMPTY_MEANS_NONE).
 */
export function parseCommandArgs<T extends Options>(config: { args: string[]; options: T; allowPositionals: boolean }) {
  const parsed = parseArgs({ ...config, strict: true, tokens: true });
  const seen = new Map<string, string>();
  for (const token of parsed.tokens) {
    if (token.kind !== "option") continue;
    const option = config.options[token.name];
    if (!option || option.type !== "string") continue;
    const value = token.value ?? "";
    if (value.trim() === "" && !EMPTY_MEANS_NONE.has(token.name)) {
      throw new CliError(`--${token.name} is empty: give it a value, or leave the flag out`, 2);
    }
    if (option.multiple) continue;
    const before = seen.get(token.name);
    if (before !== undefined) {
      throw new CliError(`--${token.name} is given more than once ("${shown(before)}", then "${shown(value)}"); give it once`, 2);
    }
    seen.set(token.name, value);
  }
  // An empty argument (`policy check "$FILE"` with the variable unset) names nothing: said as such,
  // not as a file called "" that cannot be read, or a usage line.
  if (parsed.positionals.some((p) => p.trim() === "")) throw new CliError('an argument is empty (""): give a value, or leave it out', 2);
  return { values: parsed.values, positionals: parsed.positionals };
}

/** A value as a refusal quotes it: a long one is cut. */
const shown = (value: string) => (value.length > 40 ? `${value.slice(0, 40)}…` : value);

/** Strict options (see parseCommandArgs); unknown, repeated or valueless flags become a one-line CliError. */
export function parseFlags<T extends Options>(args: string[], options: T, positionals = 0) {
  try {
    const parsed = parseCommandArgs({ args, options, allowPositionals: positionals > 0 });
    if (parsed.positionals.length > positionals) {
      throw new CliError(`unexpected argument "${parsed.positionals[positionals]}"`, 2);
    }
    return parsed;
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(flagErrorMessage(error, Object.keys(options)), 2);
  }
}

/**
 * node:util's parse errors as one line a person can act on. Its "argument is ambiguous" (a value
 * that starts with a dash, such as `--ttl -5m`) spreads the fix over three lines; say it at once.
 */
export function flagErrorMessage(error: unknown, known: readonly string[] = []): string {
  const message = error instanceof Error ? error.message : String(error);
  const ambiguous = /^Option '(--[^']+)' argument is ambiguous/.exec(message);
  if (ambiguous) return `${ambiguous[1]} needs a value; to give one that starts with a dash, write ${ambiguous[1]}=<value> (for example ${ambiguous[1]}=-1)`;
  // A mistyped flag (--ownr, --tsak): the nearest one the command takes, else the ones it takes.
  const unknown = /^Unknown option '--([^'=]+)'/.exec(message);
  if (unknown && known.length > 0) {
    const meant = closest(unknown[1]!, known, 2);
    const flags = known.map((k) => `--${k}`).join(", ");
    return `Unknown option '--${unknown[1]}' (${meant ? `did you mean --${meant}?` : `its options are ${flags}`})`;
  }
  // node's "Unexpected argument 'x'. This command does not take positional arguments", in the words
  // the other commands use for an argument too many.
  const positional = /^Unexpected argument '([^']*)'\. This command does not take positional arguments/.exec(message);
  if (positional) return `unexpected argument "${positional[1]}": this command takes no arguments besides its flags`;
  return message.split("\n")[0] ?? message;
}

export function requireFlag(value: string | undefined, name: string): string {
  if (value === undefined || value === "") throw new CliError(`--${name} is required`, 2);
  return value;
}
