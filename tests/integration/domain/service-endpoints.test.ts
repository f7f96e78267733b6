import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Actor } from "@/lib/auth/actor";
import { saveCustomService } from "@/lib/services/services";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser } from "../../support/factories";

/**
 * A service descriptor that would be saved but never work is refused when saved: internal
 * address ranges the proxy refuses (saved with "Saved.", then every request got
 * destination_forbidden), and a host written as an IP address in another spelling than the
 * canonical one (`2130706433`), which requests never matched.
 */
describe("service descriptors whose endpoints could never be reached", () => {
  let t: TestDatabase;
  let admin: Actor;
  beforeAll(async () => {
    t = await createTestDatabase();
    admin = (await makeUser(t.db, "admin")).actor;
  });
  afterAll(() => t.drop());

  const yaml = (name: string, hosts: string, internal: string) => `id: ${name}\nhosts: ${hosts}\nscheme: http\nports: [9000]\nprotocol: rest\nproxy:\n  internalAddresses: ${internal}\n`;
  const refusal = async (text: string) => {
    try {
      await saveCustomService(t.db, admin, text);
      return null;
    } catch (error) {
      return JSON.stringify((error as { details?: unknown }).details ?? (error as Error).message);
    }
  };

  it("internal ranges the proxy refuses are refused when saved", async () => {
    for (const ranges of ["[0.0.0.0/0]", "[\"::/0\"]", "[10.0.0.0/99]", "[\"::ffff:127.0.0.1/128\"]", "[0127.0.0.1/32]"]) {
      expect(await refusal(yaml("ranges", "[api.ranges.test]", ranges)), ranges).toMatch(/internalAddresses/);
    }
    expect(await t.db.service.count({ where: { name: "ranges" } })).toBe(0);
  });

  it("an IP host in a non-canonical spelling is refused, naming the canonical one", async () => {
    expect(await refusal(yaml("numeric", "[\"2130706433\"]", "[127.0.0.1/32]"))).toMatch(/write the address 2130706433 as 127\.0\.0\.1/);
    expect(await refusal(yaml("numeric", "[0x7f.0.0.2]", "[127.0.0.0/8]"))).toMatch(/as 127\.0\.0\.2/);
    expect(await refusal(yaml("numeric", "[127.0.0.03]", "[127.0.0.0/8]"))).toMatch(/as 127\.0\.0\.3/);
  });

  it("canonical addresses and names, with usable ranges, are saved (the control)", async () => {
    expect(await refusal(yaml("fine", "[127.0.0.1, api.fine.test]", "[127.0.0.1/32]"))).toBeNull();
  });
});
