/**
 * A service declared internal may name a local host (`localhost`, `db.internal`, a single label
 * from the hosts file) among its hosts: only then is that name resolved, and every address it
 * resolves to must lie inside the service's internal ranges. Any other service, a glob, or a
 * name the service does not list is refused before any lookup.
 */
import { describe, expect, it } from "vitest";
import { serviceDescriptorSchema, type ServiceDescriptor } from "@/lib/semantics/descriptors/schema";
import type { Lookup } from "@/lib/net/resolve";
import { ServiceDestinations } from "@/proxy-worker/proxy/destinations";
import { canonical } from "../semantics/support";

const answers: Record<string, string> = { "runsc.": "127.0.0.1", "localhost.": "127.0.0.1", "db.internal.": "10.1.2.3", "evil.internal.": "10.9.9.9", "public.internal.": "93.184.216.34" };
const asked: string[] = [];
const lookup: Lookup = async (name) => {
  asked.push(name);
  const address = answers[name] ?? answers[`${name}.`];
  if (!address) throw Object.assign(new Error("not found"), { code: "ENOTFOUND" });
  return [{ address, family: 4 }];
};

const service = (hosts: string[], internalAddresses: string[]): ServiceDescriptor =>
  serviceDescriptorSchema.parse({ id: "local", hosts, scheme: "http", ports: [3792], protocol: "rest", rest: { routes: [] }, proxy: { internalAddresses } });

async function outcome(host: string, descriptor: ServiceDescriptor | null): Promise<string> {
  try {
    const port = descriptor ? 3792 : 80;
    const result = await new ServiceDestinations([], lookup).check(canonical("GET", `http://${host}:${port}/x`), descriptor);
    return `ok ${result.address}`;
  } catch (error) {
    return `refused ${(error as { code?: string }).code}`;
  }
}

describe("local names for internal services", () => {
  it("a name the internal service lists is resolved, inside its ranges", async () => {
    expect(await outcome("runsc", service(["runsc", "vm"], ["127.0.0.1/32"]))).toBe("ok 127.0.0.1");
    expect(await outcome("localhost", service(["localhost"], ["127.0.0.1/32"]))).toBe("ok 127.0.0.1");
    expect(await outcome("db.internal", service(["db.internal"], ["10.1.0.0/16"]))).toBe("ok 10.1.2.3");
  });

  it("an answer outside the service's ranges is refused, even a public one", async () => {
    expect(await outcome("evil.internal", service(["evil.internal"], ["10.1.0.0/16"]))).toBe("refused destination_forbidden");
    expect(await outcome("public.internal", service(["public.internal"], ["10.1.0.0/16"]))).toBe("refused destination_forbidden");
  });

  it("refused before any lookup: a service not declared internal, a glob, a name it does not list, no service", async () => {
    asked.length = 0;
    expect(await outcome("runsc", service(["runsc"], []))).toBe("refused destination_forbidden");
    expect(await outcome("db.internal", service(["*.internal"], ["10.1.0.0/16"]))).toBe("refused destination_forbidden");
    expect(await outcome("db.internal", service(["api.internal"], ["10.1.0.0/16"]))).toBe("refused destination_forbidden");
    expect(await outcome("localhost", null)).toBe("refused destination_forbidden");
    expect(asked).toEqual([]);
  });
});
