import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { CliContext } from "@/cli/context";
import { asksForHelp, COMMAND_USAGE, USAGE, usageLine } from "@/cli/help";
import { cliArguments, main } from "@/cli/main";

function capture(json = false): { ctx: CliContext; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { ctx: { json, stdout: (l) => out.push(l), stderr: (l) => err.push(l), stdinIsTTY: true, readStdin: async () => "" }, out, err };
}

describe("CLI help", () => {
  it("prints the version of the code it ships with for --version, -V and version (also with --json)", async () => {
    const { version } = JSON.parse(readFileSync("package.json", "utf8")) as { version: string };
    for (const argv of [["--version"], ["-V"], ["version"]]) {
      const { ctx, out, err } = capture();
      expect(await main(argv, ctx)).toBe(0);
      expect(out).toEqual([`bulkhead ${version}`]);
      expect(err).toEqual([]);
    }
    const { ctx, out } = capture(true);
    expect(await main(["--version", "--json"], ctx)).toBe(0);
    expect(JSON.parse(out[0]!)).toEqual({ version });
    // It takes nothing else: an extra argument is refused, not ignored.
    for (const argv of [["--version", "extra"], ["version", "--name", "x"]]) {
      const refused = capture();
      expect(await main(argv, refused.ctx)).toBe(2);
      expect(refused.out).toEqual([]);
      expect(refused.err.join("\n")).toMatch(/takes no arguments/);
    }
  });

  it("asks for help only before a `--` (after it, the flags are the sandboxed command's)", () => {
    expect(asksForHelp(["create", "--name", "x", "--help"])).toBe(true);
    expect(asksForHelp(["-h"])).toBe(true);
    expect(asksForHelp(["run", "--task", "t", "--", "tool", "--help"])).toBe(false);
    expect(asksForHelp(["run", "--task", "t", "--", "-h"])).toBe(false);
    expect(asksForHelp(["--helpful"])).toBe(false);
  });

  it("keeps --json after a `--` for the sandboxed command, and takes it before", () => {
    expect(cliArguments(["sandbox", "run", "--task", "t", "--", "tool", "--json"])).toEqual({ args: ["sandbox", "run", "--task", "t", "--", "tool", "--json"], json: false });
    expect(cliArguments(["--json", "sandbox", "run", "--task", "t", "--", "tool", "--json"])).toEqual({ args: ["sandbox", "run", "--task", "t", "--", "tool", "--json"], json: true });
    expect(cliArguments(["task", "list", "--json"])).toEqual({ args: ["task", "list"], json: true });
  });

  it("the summary names every command and every audit subcommand", () => {
    for (const name of Object.keys(COMMAND_USAGE)) expect(USAGE).toMatch(new RegExp(`^  ${name}\\b`, "m"));
    for (const sub of ["verify", "export", "checkpoint", "key", "report", "verify-report", "retention", "verify-archive"]) {
      expect(USAGE).toMatch(new RegExp(`audit ${sub}\\b`));
      expect(COMMAND_USAGE.audit).toContain(`bulkhead audit ${sub}`);
    }
  });

  it("README's list of commands names every command and subcommand that `bulkhead help COMMAND` documents", () => {
    // README listed `user create|list` and `policy check|explain` while its own walkthrough uses
    // `policy templates`, and `user sign-out|reset-password` exist: a reader could not find them.
    const readme = readFileSync("README.md", "utf8").replace(/\s+/g, " ");
    const list = /`npx bulkhead --help` lists the commands: (.*?); `npx bulkhead help COMMAND`/.exec(readme)?.[1];
    expect(list, "README's command list").toBeTruthy();
    const listed = new Map<string, Set<string>>();
    for (const [, name, subs] of list!.matchAll(/`([a-z-]+)(?: ([a-z|-]+))?`/g)) listed.set(name!, new Set(subs ? subs.split("|") : []));
    const documented = new Map<string, Set<string>>();
    for (const [name, usage] of Object.entries(COMMAND_USAGE)) {
      const subs = new Set<string>();
      for (const [, sub] of usage.matchAll(new RegExp(`bulkhead ${name} ([a-z][a-z-]*)`, "g"))) subs.add(sub!);
      documented.set(name, subs);
    }
    expect(Object.fromEntries([...listed].map(([k, v]) => [k, [...v].sort()]))).toEqual(Object.fromEntries([...documented].map(([k, v]) => [k, [...v].sort()])));
  });

  it("`COMMAND --help` prints that command's usage and runs nothing; `help COMMAND` too", async () => {
    for (const argv of [["start", "--help"], ["help", "start"], ["start", "-h", "--json"]]) {
      const c = capture();
      expect(await main(argv, c.ctx)).toBe(0);
      expect(c.out.join("\n")).toBe(COMMAND_USAGE.start);
      expect(c.err).toEqual([]);
    }
    const j = capture(true);
    expect(await main(["credential", "add", "--help"], j.ctx)).toBe(0);
    expect(JSON.parse(j.out[0]!)).toEqual({ command: "credential", usage: COMMAND_USAGE.credential });
  });

  it("a usage error is one line that names every form of the command", async () => {
    const c = capture();
    expect(await main(["audit"], c.ctx)).toBe(2);
    expect(c.err).toHaveLength(1);
    expect(c.err[0]).toMatch(/^bulkhead audit: usage: bulkhead audit verify /);
    for (const sub of ["export", "checkpoint", "key", "report", "verify-report", "retention", "verify-archive"]) expect(c.err[0]).toContain(`| bulkhead audit ${sub}`);
    expect(usageLine("ca")).toBe("usage: bulkhead ca cert | bulkhead ca rotate");
    // A form's continuation line (more options) stays with it; descriptions are left out.
    expect(usageLine("credential")).toContain("--env ENV [--env ENV]... --header 'Authorization: Bearer {secret}' | bulkhead credential bind");
    expect(usageLine("credential")).not.toContain("injected only");
  });

  it("start and worker refuse arguments before doing anything", async () => {
    for (const [cmd, arg] of [["start", "--port"], ["worker", "x"]] as const) {
      const c = capture();
      expect(await main([cmd, arg], c.ctx)).toBe(2);
      expect(c.err).toEqual([`bulkhead ${cmd}: unexpected argument "${arg}": bulkhead ${cmd} takes none (settings are environment variables; bulkhead help ${cmd})`]);
    }
  });

  it("a value that starts with a dash is explained in one line, with the spelling that works", async () => {
    for (const args of [["task", "create", "--agent", "a", "--purpose", "p", "--ttl", "-5m"], ["policy", "explain", "--policy", "-x"]]) {
      const c = capture();
      expect(await main(args, c.ctx)).toBe(2);
      const flag = args.at(-2)!;
      expect(c.err[0]).toContain(`${flag} needs a value; to give one that starts with a dash, write ${flag}=<value> (for example ${flag}=-1)`);
      expect(c.err[0]).not.toContain("ambiguous");
    }
  });
});
