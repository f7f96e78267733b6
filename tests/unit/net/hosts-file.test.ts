import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { HostsFile, parseHostsFile } from "@/lib/net/hosts-file";
import { createSystemLookup } from "@/lib/net/resolve";

describe("hosts file", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "bh-hosts-unit-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("parses addresses, names and aliases, skipping comments and invalid lines", () => {
    const names = parseHostsFile("# comment\n10.0.0.1 db.example.com DB-Alias. # trailing\nnot-an-ip bad.example\n::1 v6.example\n10.0.0.2 db.example.com\n\n");
    expect(names.get("db.example.com")).toEqual([{ address: "10.0.0.1", family: 4 }, { address: "10.0.0.2", family: 4 }]);
    expect(names.get("db-alias")).toEqual([{ address: "10.0.0.1", family: 4 }]);
    expect(names.get("v6.example")).toEqual([{ address: "::1", family: 6 }]);
    expect(names.has("bad.example")).toBe(false);
  });

  it("answers from the file first and re-reads it when it changes; other names go to DNS as absolute names", async () => {
    const file = path.join(dir, "hosts");
    writeFileSync(file, "10.9.0.1 pinned.example.com\n");
    const hosts = new HostsFile(file, 0);
    const asked: string[] = [];
    const lookup = createSystemLookup(hosts, async (name) => {
      asked.push(name);
      return [{ address: "140.82.112.3", family: 4 }];
    });
    const options = { all: true, verbatim: true } as const;
    expect(await lookup("Pinned.Example.COM.", options)).toEqual([{ address: "10.9.0.1", family: 4 }]);
    writeFileSync(file, "10.9.0.2 pinned.example.com other.example.com\n");
    expect(await lookup("pinned.example.com.", options)).toEqual([{ address: "10.9.0.2", family: 4 }]);
    expect(await lookup("api.example.com.", options)).toEqual([{ address: "140.82.112.3", family: 4 }]);
    expect(asked).toEqual(["api.example.com."]);
  });

  it("works without a hosts file", async () => {
    expect(await new HostsFile(path.join(dir, "nope"), 0).lookup("anything.example")).toBeNull();
  });
});
