import { describe, expect, it } from "vitest";
import type { CliContext } from "@/cli/context";
import { COMMAND_USAGE } from "@/cli/help";
import { main } from "@/cli/main";

/**
 * `bulkhead help COMMAND` and the flags each form takes agree: every flag its synopsis shows is
 * accepted, and every flag it accepts is shown. The accepted ones are read from the refusal of an
 * unknown flag ("its options are --a, --b"), which every form's parser gives before doing
 * anything else (no database, no files).
 */
const UNKNOWN = "--zzqq-not-a-flag";

/** Flags a form takes that its synopsis does not show, and where they are documented instead. */
const DOCUMENTED_ELSEWHERE: Record<string, string[]> = {
  // Test hooks of the self-test, described in docs/isolation.md ("Canary flags").
  "sandbox run": ["canary-v4", "canary-v6", "canary-ula", "canary-port", "canary-udp-port", "canary-resolver", "bulkhead-address"],
  "sandbox verify": ["canary-v4", "canary-v6", "canary-ula", "canary-port", "canary-udp-port", "canary-resolver", "bulkhead-address"],
};

/** Forms whose flags are parsed by more than one parser, chosen by a flag: each is asked. */
const DISPATCH: Record<string, string[][]> = {
  // `policy check --task ID [FILE]` is parsed apart from `policy check FILE [--offline ...]`.
  "policy check": [[UNKNOWN], ["--task", "t", UNKNOWN]],
  // Bulkhead's flags are those before the `--`; the command's own follow it.
  "sandbox run": [[UNKNOWN, "--", "true"]],
};

/** Each form of each command: "credential add" and the flags its synopses show (forms of one name merged). */
function forms(): Array<{ form: string; shown: Set<string> }> {
  const out: Array<{ form: string; shown: Set<string> }> = [];
  for (const [command, usage] of Object.entries(COMMAND_USAGE)) {
    let current: { form: string; shown: Set<string> } | undefined;
    for (const raw of usage.split("\n")) {
      const line = raw.trim().replace(/^usage:\s*/, "");
      const synopsis = line.split(/\s{2,}/)[0] ?? "";
      const start = new RegExp(`^bulkhead ${command}(?: ([a-z][a-z-]*))?`).exec(synopsis);
      if (start) {
        const form = start[1] ? `${command} ${start[1]}` : command;
        current = out.find((f) => f.form === form) ?? { form, shown: new Set<string>() };
        if (!out.includes(current)) out.push(current);
      } else if (!/^[-[]/.test(synopsis)) continue;
      for (const [, flag] of synopsis.matchAll(/--([a-z][a-z0-9-]*)/g)) current?.shown.add(flag!);
    }
  }
  return out;
}

async function accepted(form: string): Promise<Set<string> | null> {
  let all: Set<string> | null = null;
  for (const args of DISPATCH[form] ?? [[UNKNOWN]]) {
    const err: string[] = [];
    const ctx: CliContext = { json: false, stdout: () => {}, stderr: (l) => err.push(l), stdinIsTTY: true, readStdin: async () => "" };
    const code = await main([...form.split(" "), ...args], ctx);
    const line = err.join("\n");
    if (code !== 2 || !line.includes(`Unknown option '${UNKNOWN}'`)) continue;
    const listed = /its options are ([^)]*)\)/.exec(line)?.[1];
    all ??= new Set<string>();
    for (const flag of listed ? listed.split(", ") : []) all.add(flag.replace(/^--/, ""));
  }
  return all;
}

describe("help and the flags each command takes", () => {
  it("agree for every form that takes flags", async () => {
    const checked: string[] = [];
    for (const { form, shown } of forms()) {
      const flags = await accepted(form);
      if (flags === null) continue; // a form without a flag parser (keys, ca, start, worker) refuses any argument
      checked.push(form);
      flags.delete("json");
      shown.delete("json");
      for (const hidden of DOCUMENTED_ELSEWHERE[form] ?? []) flags.delete(hidden);
      expect([...flags].sort(), `bulkhead ${form}: accepted vs shown in its help`).toEqual([...shown].sort());
    }
    // The check reached the commands people use most.
    for (const form of ["agent create", "task create", "credential add", "audit export", "policy explain", "policy check", "sandbox run"]) expect(checked).toContain(form);
  });
});
