import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Actor } from "@/lib/auth/actor";
import { AppError } from "@/lib/errors/app-error";
import {
  addCredential,
  CredentialLoadError,
  deleteCredential,
  listCredentials,
  loadCredentialsForInjection,
  renderHeader,
  rotateCredential,
  serviceKey,
} from "@/lib/vault";
import { secretForms } from "@/lib/vault/secret-forms";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { deriveProcessKeys } from "@/lib/keys/process-keys";
import { makeUser, unique } from "../../support/factories";
import { establishTestKeys, type TestKeys } from "../../support/keys";
import { leaks, randomSecret } from "./secret-search";

/** Another installation's keys: right shape, wrong data. */
const OTHER = deriveProcessKeys(randomBytes(32));
let keys: TestKeys;

describe("credential vault through the real database", () => {
  let t: TestDatabase;
  let admin: Actor;
  let auditor: Actor;
  let approver: Actor;
  /** Every secret this file ever stores, to search the audit trail for at the end. */
  const secrets: string[] = [];
  const secret = (prefix?: string) => {
    const s = randomSecret(prefix);
    secrets.push(s);
    return s;
  };
  const host = () => `${unique("api")}.example.test`;

  beforeAll(async () => {
    t = await createTestDatabase();
    keys = await establishTestKeys(t.db, { signingKey: false });
    admin = (await makeUser(t.db, "admin")).actor;
    auditor = (await makeUser(t.db, "auditor")).actor;
    approver = (await makeUser(t.db, "approver")).actor;
  });
  afterAll(() => t.drop());

  it("stores only a sealed secret: no raw, base64, base64url or hex part of it anywhere in the row", async () => {
    const s = secret();
    const credential = await addCredential(t.db, admin, keys.workerKey, { environments: "*", name: unique("gh"), host: host(), headerTemplate: "Authorization: Bearer {secret}", secret: s });
    const [row] = await t.db.$queryRaw<Array<{ json: string }>>`SELECT row_to_json(c)::text AS json FROM credentials c WHERE id = ${credential.id}::uuid`;
    expect(row!.json).toContain("sb1."); // the sealed box is there...
    expect(leaks(row!.json, s)).toEqual([]); // ...and nothing of the secret
  });

  it("returns metadata with a fixed mask, never the secret or the sealed form", async () => {
    const s = secret();
    const created = await addCredential(t.db, admin, keys.workerKey, { environments: "*", name: unique("masked"), host: host(), port: 8443, headerTemplate: "X-Api-Key: {secret}", secret: s });
    expect(created).toMatchObject({ scheme: "https", port: 8443, headerName: "X-Api-Key", secret: "••••" });
    for (const reader of [admin, auditor, approver]) {
      const listed = await listCredentials(t.db, reader);
      const mine = listed.find((c) => c.id === created.id)!;
      expect(mine.secret).toBe("••••");
      expect(JSON.stringify(listed)).not.toContain("sb1.");
      expect(leaks(JSON.stringify(listed), s)).toEqual([]);
    }
  });

  it("injects the decrypted header for the exact service only, keyed scheme://host:port", async () => {
    const s = secret();
    const h = host();
    const c = await addCredential(t.db, admin, keys.workerKey, { environments: "*", name: unique("inj"), host: h.toUpperCase(), scheme: "http", headerTemplate: "Authorization:   Bearer {secret}", secret: s });
    expect(c.host).toBe(h);
    expect(c.port).toBe(80);
    const map = await loadCredentialsForInjection(t.db, keys.workerKey);
    expect(map.get(serviceKey("http", h, 80))).toEqual({
      credentialId: c.id,
      name: c.name,
      serviceId: "unknown",
      environments: ["*"],
      headerName: "Authorization",
      headerValue: `Bearer ${s}`,
      secretForms: secretForms(s),
    });
    expect(map.get(serviceKey("http", h, 80))!.secretForms).toEqual(expect.arrayContaining([s, Buffer.from(s).toString("base64")]));
    expect(map.has(serviceKey("https", h, 443))).toBe(false);
    expect(map.has(serviceKey("http", h, 8080))).toBe(false);
  });

  it("renders Basic auth from user:password with {secret:base64}", async () => {
    expect(renderHeader("Authorization: Basic {secret:base64}", "deploy:pa ss:wörd")).toEqual({
      headerName: "Authorization",
      headerValue: `Basic ${Buffer.from("deploy:pa ss:wörd").toString("base64")}`,
    });
    const s = `ci:${secret()}`;
    const c = await addCredential(t.db, admin, keys.workerKey, { environments: "*", name: unique("basic"), host: "[2001:DB8::1]", port: "8443", headerTemplate: "Authorization: Basic {secret:base64}", secret: s });
    expect(c.service).toBe("https://[2001:db8::1]:8443");
    const injected = (await loadCredentialsForInjection(t.db, keys.workerKey)).get("https://[2001:db8::1]:8443")!;
    expect(injected.headerValue).toBe(`Basic ${Buffer.from(s).toString("base64")}`);
    // The whole secret, the password alone, and their base64 carriers; and the value as sent, with its own.
    const sent = Buffer.from(s).toString("base64");
    expect(injected.secretForms).toEqual([...new Set([...secretForms(s, { basicAuth: true }), ...secretForms(sent)])].sort((a, b) => b.length - a.length));
    expect(injected.secretForms).toEqual(expect.arrayContaining([Buffer.from(sent).toString("base64"), Buffer.from(sent).toString("hex")]));
    expect(injected.secretForms).toEqual(expect.arrayContaining([s, s.slice(3), Buffer.from(s).toString("base64"), Buffer.from(s.slice(3)).toString("base64")]));
  });

  it("fails loudly when the worker key is wrong, and refuses to seal to another worker key", async () => {
    await addCredential(t.db, admin, keys.workerKey, { environments: "*", name: unique("k"), host: host(), headerTemplate: "X-Key: {secret}", secret: secret() });
    const error = await loadCredentialsForInjection(t.db, OTHER.workerKey).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CredentialLoadError);
    expect((error as Error).message).toMatch(/could not be decrypted: secret was sealed for key [0-9a-f]{16} but this process holds key [0-9a-f]{16}/);
    const before = await t.db.credential.count();
    const name = unique("wrong-key");
    await expect(addCredential(t.db, admin, OTHER.workerKey, { environments: "*", name, host: host(), headerTemplate: "X-Key: {secret}", secret: secret() })).rejects.toThrow(
      /does not belong to the keys the data is sealed with.*Nothing was written/,
    );
    expect(await t.db.credential.count()).toBe(before);
    const existing = (await t.db.credential.findFirstOrThrow()).id;
    await expect(rotateCredential(t.db, admin, OTHER.workerKey, existing, secret())).rejects.toThrow(/does not belong to the keys the data is sealed with/);
  });

  it("refuses a sealed secret copied into another credential's row (aad binds it to its id)", async () => {
    const victim = await addCredential(t.db, admin, keys.workerKey, { environments: "*", name: unique("victim"), host: host(), headerTemplate: "X-Key: {secret}", secret: secret() });
    const attacker = await addCredential(t.db, admin, keys.workerKey, { environments: "*", name: unique("attacker"), host: host(), headerTemplate: "X-Key: {secret}", secret: secret() });
    const { secretSealed } = await t.db.credential.findUniqueOrThrow({ where: { id: victim.id } });
    await t.db.credential.update({ where: { id: attacker.id }, data: { secretSealed } });
    try {
      const error = await loadCredentialsForInjection(t.db, keys.workerKey).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CredentialLoadError);
      expect((error as Error).message).toContain(attacker.id);
      expect((error as Error).message).toMatch(/aad of another record/);
    } finally {
      await t.db.credential.delete({ where: { id: attacker.id } });
    }
    expect((await loadCredentialsForInjection(t.db, keys.workerKey)).size).toBeGreaterThan(0);
  });

  it("refuses to inject a header template that was tampered with in the database", async () => {
    const c = await addCredential(t.db, admin, keys.workerKey, { environments: "*", name: unique("tamper"), host: host(), headerTemplate: "X-Key: {secret}", secret: secret() });
    await t.db.credential.update({ where: { id: c.id }, data: { headerTemplate: "X-Key: {secret}\r\nHost: internal.example" } });
    try {
      await expect(loadCredentialsForInjection(t.db, keys.workerKey)).rejects.toThrow(/cannot be injected: .*single line/);
    } finally {
      await t.db.credential.delete({ where: { id: c.id } });
    }
  });

  it("lets auditors and approvers list but never add, rotate or delete", async () => {
    const s = secret();
    const c = await addCredential(t.db, admin, keys.workerKey, { environments: "*", name: unique("ro"), host: host(), headerTemplate: "X-Key: {secret}", secret: s });
    const sealedBefore = (await t.db.credential.findUniqueOrThrow({ where: { id: c.id } })).secretSealed;
    for (const reader of [auditor, approver]) {
      const name = unique("nope");
      await expect(addCredential(t.db, reader, keys.workerKey, { environments: "*", name, host: host(), headerTemplate: "X-Key: {secret}", secret: secret() })).rejects.toMatchObject({
        code: "FORBIDDEN",
      });
      await expect(rotateCredential(t.db, reader, keys.workerKey, c.id, secret())).rejects.toMatchObject({ code: "FORBIDDEN" });
      await expect(deleteCredential(t.db, reader, c.id)).rejects.toMatchObject({ code: "FORBIDDEN" });
      expect(await t.db.credential.count({ where: { name } })).toBe(0);
    }
    expect((await t.db.credential.findUniqueOrThrow({ where: { id: c.id } })).secretSealed).toBe(sealedBefore);
  });

  it("rotates: the old secret is gone, the new one is injected, and the row stays bound to its id", async () => {
    const old = secret();
    const c = await addCredential(t.db, admin, keys.workerKey, { environments: "*", name: unique("rot"), host: host(), headerTemplate: "Authorization: token {secret}", secret: old });
    const fresh = secret();
    const rotated = await rotateCredential(t.db, admin, keys.workerKey, c.id, fresh);
    expect(rotated.rotatedAt).toBeInstanceOf(Date);
    expect(leaks(JSON.stringify(rotated), fresh)).toEqual([]);
    const injected = (await loadCredentialsForInjection(t.db, keys.workerKey)).get(c.service)!;
    expect(injected.headerValue).toBe(`token ${fresh}`);
    const [row] = await t.db.$queryRaw<Array<{ json: string }>>`SELECT row_to_json(c)::text AS json FROM credentials c WHERE id = ${c.id}::uuid`;
    expect(leaks(row!.json, fresh)).toEqual([]);
    expect(leaks(row!.json, old)).toEqual([]);
  });

  it("rejects a rotation secret the template cannot carry, without echoing it", async () => {
    const c = await addCredential(t.db, admin, keys.workerKey, { environments: "*", name: unique("rot-bad"), host: host(), headerTemplate: "X-Key: {secret}", secret: secret() });
    const evil = `${secret()}\r\nX-Injected: 1`;
    const error = (await rotateCredential(t.db, admin, keys.workerKey, c.id, evil).catch((e: unknown) => e)) as Error;
    expect(error.message).toMatch(/line breaks/);
    expect(leaks(JSON.stringify({ message: error.message, ...(error as object) }), evil.slice(0, 40))).toEqual([]);
    await expect(rotateCredential(t.db, admin, keys.workerKey, c.id, "naïve-non-ascii")).rejects.toThrow(/printable ASCII/);
    await expect(rotateCredential(t.db, admin, keys.workerKey, "../../etc/passwd", secret())).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(rotateCredential(t.db, admin, keys.workerKey, "00000000-0000-4000-8000-000000000000", secret())).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("deletes, after which the proxy no longer injects it", async () => {
    const c = await addCredential(t.db, admin, keys.workerKey, { environments: "*", name: unique("del"), host: host(), headerTemplate: "X-Key: {secret}", secret: secret() });
    const deleted = await deleteCredential(t.db, admin, c.id);
    expect(deleted.id).toBe(c.id);
    expect((await loadCredentialsForInjection(t.db, keys.workerKey)).has(c.service)).toBe(false);
    await expect(deleteCredential(t.db, admin, c.id)).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("allows one credential per service and unique names", async () => {
    const h = host();
    const first = await addCredential(t.db, admin, keys.workerKey, { environments: "*", name: unique("one"), host: h, headerTemplate: "X-Key: {secret}", secret: secret() });
    await expect(addCredential(t.db, admin, keys.workerKey, { environments: "*", name: unique("two"), host: h, port: 443, headerTemplate: "X-Key: {secret}", secret: secret() })).rejects.toMatchObject({
      code: "CONFLICT",
      details: { fieldErrors: { host: [expect.stringContaining(first.name)] } },
    });
    await expect(addCredential(t.db, admin, keys.workerKey, { environments: "*", name: first.name, host: host(), headerTemplate: "X-Key: {secret}", secret: secret() })).rejects.toMatchObject({
      code: "CONFLICT",
    });
    // Same host on another port is another service.
    await addCredential(t.db, admin, keys.workerKey, { environments: "*", name: unique("three"), host: h, port: 8443, headerTemplate: "X-Key: {secret}", secret: secret() });
    // Concurrent adds for one service: exactly one wins.
    const h2 = host();
    const results = await Promise.allSettled(
      [1, 2, 3].map(() => addCredential(t.db, admin, keys.workerKey, { environments: "*", name: unique("race"), host: h2, headerTemplate: "X-Key: {secret}", secret: secret() })),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect(await t.db.credential.count({ where: { host: h2 } })).toBe(1);
  });

  it("refuses a name that differs from a credential's only in case, also when both are added at once", async () => {
    const first = await addCredential(t.db, admin, keys.workerKey, { environments: "*", name: unique("Railway-Prod"), host: host(), headerTemplate: "X-Key: {secret}", secret: secret() });
    await expect(addCredential(t.db, admin, keys.workerKey, { environments: "*", name: first.name.toLowerCase(), host: host(), headerTemplate: "X-Key: {secret}", secret: secret() })).rejects.toMatchObject({
      code: "CONFLICT",
      details: { fieldErrors: { name: [`A credential named ${first.name} already exists (names that differ only in case are one name).`] } },
    });
    const race = unique("race-name");
    const results = await Promise.allSettled(
      [race, race.toUpperCase(), `R${race.slice(1)}`].map((name) => addCredential(t.db, admin, keys.workerKey, { environments: "*", name, host: host(), headerTemplate: "X-Key: {secret}", secret: secret() })),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect(await t.db.credential.count({ where: { name: { in: [first.name.toLowerCase(), race, race.toUpperCase(), `R${race.slice(1)}`] } } })).toBe(1);
  });

  it("records added/rotated/deleted with name and service, and no audit row contains any secret", async () => {
    const s = secret();
    const c = await addCredential(t.db, admin, keys.workerKey, { environments: "*", name: unique("audited"), host: host(), headerTemplate: "Authorization: Basic {secret:base64}", secret: s });
    await rotateCredential(t.db, admin, keys.workerKey, c.id, secret());
    await deleteCredential(t.db, admin, c.id);
    const events = await t.db.auditEvent.findMany({ where: { type: { startsWith: "credential." } }, orderBy: { id: "asc" } });
    const mine = events.filter((e) => (e.data as { credentialId?: string }).credentialId === c.id);
    expect(mine.map((e) => e.type)).toEqual(["credential.added", "credential.rotated", "credential.deleted"]);
    for (const e of mine) {
      expect(e).toMatchObject({ actorType: "user", actorId: (admin as { userId: string }).userId, data: { name: c.name, service: c.service } });
    }
    const all = await t.db.$queryRaw<Array<{ json: string }>>`SELECT row_to_json(a)::text AS json FROM audit_events a`;
    expect(all.length).toBeGreaterThan(10);
    const dump = all.map((r) => r.json).join("\n");
    for (const s2 of secrets) expect(leaks(dump, s2), "a secret leaked into the audit trail").toEqual([]);
    expect(dump).not.toContain("sb1."); // nor any sealed form
  });
});

describe("credential input validation", () => {
  let t: TestDatabase;
  let admin: Actor;
  const add = (input: Record<string, unknown>) =>
    addCredential(t.db, admin, keys.workerKey, { environments: "*", name: unique("v"), host: "api.example.test", headerTemplate: "X-Key: {secret}", secret: "s3cret-value", ...input } as never);
  const messageOf = async (input: Record<string, unknown>) => {
    const error = await add(input).then(
      () => null,
      (e: unknown) => e,
    );
    if (!error) return null;
    if (error instanceof AppError) return error.userMessage;
    return (error as { issues?: Array<{ path: unknown[]; message: string }> }).issues?.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ") ?? String(error);
  };

  beforeAll(async () => {
    t = await createTestDatabase();
    keys = await establishTestKeys(t.db, { signingKey: false });
    admin = (await makeUser(t.db, "admin")).actor;
  });
  afterAll(() => t.drop());

  it("rejects header templates that could inject, smuggle or reroute", async () => {
    const cases: Array<[string, RegExp]> = [
      ["Authorization: Bearer {secret}\r\nX-Evil: 1", /single line/],
      ["Authorization: Bearer {secret}\nHost: evil", /single line/],
      ["Authorization: Bearer {secret}\r", /single line/],
      ["X-Key: {secret}\u0000", /control characters/],
      ["X-Key: {secret}\t1", /control characters/],
      ["X-Key: {secret}{secret}", /exactly one .* \(found 2\)/],
      ["X-Key: {secret} {secret:base64}", /exactly one .* \(found 2\)/],
      ["Authorization: Bearer hard-coded", /exactly one .* \(found 0\)/],
      ["X-Key: {secret:hex}", /Unknown placeholder \{secret:hex\}/],
      ["X-Key: {{secret}}", /Braces are only allowed/],
      ["X-Key: {SECRET}", /Unknown placeholder/],
      ["Authorization Bearer {secret}", /Header-Name: value/],
      ["Author ization: {secret}", /HTTP token/],
      ["Authorization : Bearer {secret}", /HTTP token/],
      [": {secret}", /HTTP token/],
      ["X-Kéy: {secret}", /ASCII/],
      ["Host: {secret}", /may not set the Host header/],
      ["host: {secret}", /may not set/],
      ["Content-Length: {secret}", /may not set/],
      ["Transfer-Encoding: {secret}", /may not set/],
      ["Connection: {secret}", /may not set/],
      ["Keep-Alive: {secret}", /may not set/],
      ["Upgrade: {secret}", /may not set/],
      ["TE: {secret}", /may not set/],
      ["Trailer: {secret}", /may not set/],
      ["Proxy-Authorization: Basic {secret:base64}", /may not set/],
      ["Proxy-Connection: {secret}", /may not set/],
      ["X-Forwarded-Host: {secret}", /may not set/],
      ["Forwarded: {secret}", /may not set/],
      ["X-HTTP-Method-Override: {secret}", /may not set/],
      ["Content-Type: {secret}", /may not set/],
      ["", /Enter a header template/],
    ];
    for (const [headerTemplate, message] of cases) {
      expect(await messageOf({ headerTemplate }), JSON.stringify(headerTemplate)).toMatch(message);
    }
    expect(await t.db.credential.count()).toBe(0);
  });

  it("rejects hosts that are not a plain host name or address, in every URL-parser spelling", async () => {
    const cases: Array<[string, RegExp]> = [
      ["https://api.example.test", /without the scheme/],
      ["user:pw@api.example.test", /user information/],
      ["api.example.test@evil.test", /user information/],
      ["api.example.test/v1", /no path/],
      ["api.example.test\\evil", /no path/],
      ["api.example.test?x", /no path/],
      ["api.example.test:8443", /port field/],
      ["api.example.test.", /trailing dot/],
      ["2130706433", /four decimal numbers/],
      ["0x7f000001", /four decimal numbers/],
      ["0x7f.1", /four decimal numbers/],
      ["127.1", /four decimal numbers/],
      ["0177.0.0.1", /four decimal numbers/],
      ["127.000.000.001", /four decimal numbers/],
      ["256.1.1.1", /four decimal numbers/],
      ["evil.0x10", /four decimal numbers/],
      ["bücher.example", /xn--/],
      ["exa mple.test", /spaces/],
      ["-bad.example.test", /hyphen/],
      ["bad_.example.test", /hyphen/],
      ["a..b", /hyphen/],
      ["[::1", /IPv6/],
      ["fe80::1%eth0", /zone/],
      ["[fe80::1%25eth0]", /zone/],
      ["", /Enter the service host/],
    ];
    for (const [host, message] of cases) {
      expect(await messageOf({ host }), host).toMatch(message);
    }
    expect(await t.db.credential.count()).toBe(0);
  });

  it("normalises good hosts to the one spelling a URL parser produces", async () => {
    const cases: Array<[string, string]> = [
      ["API.Example.TEST", "api.example.test"],
      ["  api.example.test ", "api.example.test"],
      ["192.0.2.10", "192.0.2.10"],
      ["[::1]", "::1"],
      ["::FFFF:127.0.0.1", "::ffff:7f00:1"],
      ["2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
      ["xn--bcher-kva.example", "xn--bcher-kva.example"],
    ];
    for (const [input, expected] of cases) {
      const c = await add({ host: input, port: 10000 + Math.floor(Math.random() * 50000) });
      expect(c.host, input).toBe(expected);
    }
  });

  it("checks scheme, port, name and secret with a message per field, never echoing the secret", async () => {
    expect(await messageOf({ scheme: "ftp" })).toMatch(/scheme: The scheme must be http or https/);
    expect(await messageOf({ port: 0 })).toMatch(/port: The port must be between 1 and 65535/);
    expect(await messageOf({ port: 65536 })).toMatch(/port: The port must be between 1 and 65535/);
    expect(await messageOf({ port: "80a" })).toMatch(/port: The port must be a whole number/);
    // Number() reads these as ports (1, 443, 80, 100): refused, never guessed.
    for (const port of [true, [443], "0x50", "1e2", "0b1", "443.0", false, null]) expect(await messageOf({ port }), JSON.stringify(port)).toMatch(/port: The port must be a whole number/);
    expect(await t.db.credential.count({ where: { port: { in: [0, 1, 80, 100, 443] }, host: "api.example.test" } })).toBe(0);
    expect(await messageOf({ name: "<script>" })).toMatch(/name: Use letters, digits/);
    expect(await messageOf({ secret: "" })).toMatch(/secret: Enter the secret/);
    expect(await messageOf({ secret: "   " })).toMatch(/secret: The secret must not be blank/);
    const injected = "tok\r\nX-Admin: true";
    const message = await messageOf({ secret: injected });
    expect(message).toMatch(/secret: The secret must not contain line breaks/);
    expect(message).not.toContain("tok");
    expect(await messageOf({ secret: "pässword" })).toMatch(/printable ASCII; use \{secret:base64\}/);
    expect(await messageOf({ secret: " padded" })).toMatch(/must not start or end with spaces/);
    expect(await messageOf({ secret: "x".repeat(8193) })).toMatch(/at most 8192/);
    // With base64 the secret may hold any printable text.
    expect(await messageOf({ secret: "pässword with spaces ", headerTemplate: "Authorization: Basic {secret:base64}" })).toBeNull();
  });
});
