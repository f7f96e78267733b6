/**
 * The CLI reads a file or standard input only up to a bound: `--policy /dev/zero` grew the
 * command to 6.8 GB before anything was checked, and 100 MB on stdin were read whole before the
 * secret's own limit refused them.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { MAX_TEXT_INPUT_BYTES, readBounded, readTextFile } from "@/cli/text-input";

describe("bounded CLI input", () => {
  let dir = "";
  afterAll(() => (dir ? rm(dir, { recursive: true, force: true }) : undefined));

  it("an endless file is refused once past the bound, not read to the end", async () => {
    await expect(readTextFile("/dev/zero", "--policy /dev/zero")).rejects.toThrow(/--policy \/dev\/zero is larger than 16 MiB; nothing was read/);
  });

  it("a regular file over the bound is refused by its size; one under it is read", async () => {
    dir = await mkdtemp(path.join(tmpdir(), "bh-bounded-"));
    const big = path.join(dir, "big.yaml");
    await writeFile(big, Buffer.alloc(MAX_TEXT_INPUT_BYTES + 1, 0x61));
    await expect(readTextFile(big, "--policy big.yaml")).rejects.toThrow(/larger than 16 MiB/);
    const small = path.join(dir, "small.yaml");
    await writeFile(small, "unlisted: deny\n");
    expect(await readTextFile(small, "--policy small.yaml")).toBe("unlisted: deny\n");
    await expect(readTextFile(dir, "--policy dir")).rejects.toThrow(/EISDIR \(it is a folder\)/);
    await expect(readTextFile(path.join(dir, "missing"), "--policy missing")).rejects.toThrow(/ENOENT \(no such file\)/);
  });

  it("a stream is read up to the bound and no further", async () => {
    let pulled = 0;
    const endless = Readable.from((function* () {
      for (;;) {
        pulled++;
        yield Buffer.alloc(1024 * 1024, 0x61);
      }
    })());
    await expect(readBounded(endless, "standard input")).rejects.toThrow(/standard input is larger than 16 MiB/);
    expect(pulled).toBeLessThan(20);
  });
});
