import { describe, expect, it } from "vitest";
import { LeafCertificateCache } from "@/proxy-worker/tls/leaf-cache";
import { CertificateAuthorityUnusableError, InvalidServerNameError } from "@/lib/tls/leaf";
import { DAY, HOUR, makeCa, NOW } from "./helpers";

const at = (ms: number) => new Date(NOW.getTime() + ms);

describe("LeafCertificateCache", () => {
  it("coalesces concurrent requests for one name into one mint, then serves hits", async () => {
    const cache = new LeafCertificateCache({ ca: (await makeCa()).issuing });
    const contexts = await Promise.all(Array.from({ length: 10 }, () => cache.secureContextFor("api.github.com", NOW)));
    expect(new Set(contexts).size).toBe(1);
    expect(cache.stats()).toEqual({ hits: 0, misses: 1, coalesced: 9, size: 1 });

    // Spellings that canonicalise to the same name share the entry.
    expect(await cache.secureContextFor("API.GitHub.com.", NOW)).toBe(contexts[0]);
    expect(cache.stats()).toEqual({ hits: 1, misses: 1, coalesced: 9, size: 1 });
  });

  it("says whether a name would be served without a new mint", async () => {
    const cache = new LeafCertificateCache({ ca: (await makeCa()).issuing });
    expect(cache.holds("api.github.com", NOW)).toBe(false);
    const minting = cache.secureContextFor("api.github.com", NOW);
    expect(cache.holds("API.GitHub.com.", NOW)).toBe(true);
    await minting;
    expect(cache.holds("api.github.com", NOW)).toBe(true);
    expect(cache.holds("api.github.com", at(30 * DAY))).toBe(false);
    expect(cache.holds("a b", NOW)).toBe(false);
    expect(cache.stats()).toEqual({ hits: 0, misses: 1, coalesced: 0, size: 1 });
  });

  it("validates the name before minting anything", async () => {
    const cache = new LeafCertificateCache({ ca: (await makeCa()).issuing });
    for (const bad of ["*.github.com", "", "a b", "x\0y", "a..b", "-a.com", "z".repeat(254)]) {
      await expect(cache.secureContextFor(bad, NOW)).rejects.toThrow(InvalidServerNameError);
    }
    expect(cache.stats()).toEqual({ hits: 0, misses: 0, coalesced: 0, size: 0 });
  });

  it("is a bounded LRU", async () => {
    const cache = new LeafCertificateCache({ ca: (await makeCa()).issuing, maxEntries: 2 });
    const a = await cache.secureContextFor("a.example", NOW);
    await cache.secureContextFor("b.example", NOW);
    expect(await cache.secureContextFor("a.example", NOW)).toBe(a); // b is now least recently used
    await cache.secureContextFor("c.example", NOW); // evicts b
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 3, size: 2 });
    expect(await cache.secureContextFor("a.example", NOW)).toBe(a);
    await cache.secureContextFor("b.example", NOW);
    expect(cache.stats()).toMatchObject({ hits: 2, misses: 4, size: 2 });

    // Many distinct names never grow it past the bound.
    await Promise.all(Array.from({ length: 20 }, (_, i) => cache.secureContextFor(`n${i}.example`, NOW)));
    expect(cache.stats().size).toBe(2);
  });

  it("re-mints a leaf within an hour of its expiry", async () => {
    const cache = new LeafCertificateCache({ ca: (await makeCa()).issuing, validityHours: 3 });
    const first = await cache.secureContextFor("api.github.com", NOW);
    expect(await cache.secureContextFor("api.github.com", at(HOUR + 59 * 60_000))).toBe(first);
    const renewed = await cache.secureContextFor("api.github.com", at(2 * HOUR + 1));
    expect(renewed).not.toBe(first);
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 2, size: 1 });
    // A clock that went backwards before the leaf's notBefore also re-mints.
    expect(await cache.secureContextFor("api.github.com", at(-30 * 60_000))).not.toBe(renewed);
  });

  it("does not cache a failed mint: every waiter sees the error and a later request mints afresh", async () => {
    const ca = await makeCa({ validityDays: 1 });
    const cache = new LeafCertificateCache({ ca: ca.issuing });
    const late = at(2 * DAY);
    const results = await Promise.allSettled([cache.secureContextFor("a.example", late), cache.secureContextFor("a.example", late)]);
    for (const r of results) {
      expect(r.status).toBe("rejected");
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(CertificateAuthorityUnusableError);
    }
    expect(cache.stats()).toEqual({ hits: 0, misses: 1, coalesced: 1, size: 0 });
    await expect(cache.secureContextFor("a.example", NOW)).resolves.toBeDefined();
  });

  it("forgets every leaf when the CA is replaced, including a mint in flight under the old CA", async () => {
    const cache = new LeafCertificateCache({ ca: (await makeCa()).issuing });
    const old = await cache.secureContextFor("a.example", NOW);
    const inFlight = cache.secureContextFor("b.example", NOW);
    cache.replaceCertificateAuthority((await makeCa()).issuing);
    await inFlight;
    expect(cache.stats().size).toBe(0);
    expect(await cache.secureContextFor("a.example", NOW)).not.toBe(old);
  });

  it("refuses a nonsense bound", async () => {
    const { issuing } = await makeCa();
    expect(() => new LeafCertificateCache({ ca: issuing, maxEntries: 0 })).toThrow(TypeError);
  });
});
