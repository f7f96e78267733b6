import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadCommonConfig } from "@/lib/config/common";
import { ConfigError } from "@/lib/config/env";
import { assertDistinctListeners, listenerClashes } from "@/lib/config/listen-ports";
import { loadWorkerConfig } from "@/lib/config/worker";
import { generateMasterKey } from "@/lib/crypto/envelope";
import { MASTER_KEY_FILE, resolveMasterKey } from "@/lib/identity/master-key";

function refusal(load: () => unknown): ConfigError {
  try {
    load();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("accepted");
}

/** What a new operator gets wrong in the environment is refused at once, naming the variable. */
describe("start-up checks a new operator meets", () => {
  it("a number written with a unit is refused in words that say what is wanted", () => {
    const error = refusal(() => loadWorkerConfig({ BULKHEAD_HOLD_TIMEOUT_SECONDS: "5m" }));
    expect(error.problems).toEqual(["BULKHEAD_HOLD_TIMEOUT_SECONDS must be a number, written in digits (e.g. 300), without a unit (it is set; the value is not shown)"]);
    expect(refusal(() => loadWorkerConfig({ BULKHEAD_MAX_CONNECTIONS: "lots" })).problems[0]).toMatch(/^BULKHEAD_MAX_CONNECTIONS must be a number/);
    expect(String(error)).not.toContain("NaN");
  });

  it("a malformed BULKHEAD_MASTER_KEY is refused with the other variables, named, its value never shown", () => {
    for (const value of ["abc", "0".repeat(64), `${generateMasterKey()}x`]) {
      const error = refusal(() => loadCommonConfig({ BULKHEAD_MASTER_KEY: value }));
      expect(error.problems).toHaveLength(1);
      expect(error.problems[0]).toMatch(/^BULKHEAD_MASTER_KEY (must be 32 bytes|is all zeros|must decode)/);
      expect(String(error)).not.toContain(value);
    }
    expect(loadCommonConfig({ BULKHEAD_MASTER_KEY: generateMasterKey() }).masterKey).toBeDefined();
    expect(loadCommonConfig({}).masterKey).toBeUndefined();
  });

  const dir = mkdtempSync(path.join(tmpdir(), "bh-master-key-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  it("a damaged master key file is refused naming the file", () => {
    writeFileSync(path.join(dir, MASTER_KEY_FILE), "not a key\n");
    expect(() => resolveMasterKey(undefined, dir)).toThrow(`${path.join(dir, MASTER_KEY_FILE)}: master key must be 32 bytes`);
  });

  it("two listeners on one port are refused before anything starts, naming both variables", () => {
    const error = refusal(() => loadWorkerConfig({ BULKHEAD_PROXY_PORT: "43200", BULKHEAD_WORKER_HEALTH_PORT: "43200" }));
    expect(error.problems).toEqual(["BULKHEAD_WORKER_HEALTH_PORT is the same port as BULKHEAD_PROXY_PORT (43200): each listener needs a port of its own (it is set; the value is not shown)"]);

    // The launcher's whole set: the dashboard's and the embedded database's ports too.
    expect(() =>
      assertDistinctListeners([
        { variable: "BULKHEAD_APP_PORT", host: "127.0.0.1", port: 43200 },
        { variable: "BULKHEAD_PROXY_PORT", host: "127.0.0.1", port: 43280 },
        { variable: "BULKHEAD_PG_PORT", host: "127.0.0.1", port: 43200 },
      ]),
    ).toThrow(/BULKHEAD_PG_PORT is the same port as BULKHEAD_APP_PORT \(43200\)/);
    // Every address and localhost overlap 127.0.0.1; two distinct addresses do not.
    expect(listenerClashes([{ variable: "A", host: "0.0.0.0", port: 1 }, { variable: "B", host: "127.0.0.1", port: 1 }])).toHaveLength(1);
    expect(listenerClashes([{ variable: "A", host: "localhost", port: 1 }, { variable: "B", host: "127.0.0.1", port: 1 }])).toHaveLength(1);
    expect(listenerClashes([{ variable: "A", host: "10.0.0.5", port: 1 }, { variable: "B", host: "127.0.0.1", port: 1 }])).toEqual([]);
    expect(loadWorkerConfig({})).toMatchObject({ proxyPort: 8080 });
  });
});
