import { createHash, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { eventHash, GENESIS_HASH } from "@/lib/audit/chain";
import { checkpointVerificationKey, signChainedCheckpoint, type CheckpointKey } from "@/lib/audit/checkpoints";
import { archivedCheckpoint, archiveFileName, type ArchivedEvent, type ArchiveManifest } from "@/lib/audit/retention/archive-format";
import { signManifest } from "@/lib/audit/retention/archive-manifest";
import { parseManifest } from "@/lib/audit/retention/archive-parse";
import { ArchiveVerifier } from "@/lib/audit/retention/archive-verifier";
import { loadAuditRetentionConfig } from "@/lib/config/audit-retention";
import { ConfigError } from "@/lib/config/env";

const seed = randomBytes(32);
const key = checkpointVerificationKey(seed);

/** An archive (version 1 unless told) of events from..through chained from `anchor`, ending at a signed checkpoint. */
function build(from = 1, through = 4, anchor = GENESIS_HASH, version = 1) {
  const events: ArchivedEvent[] = [];
  let prev = anchor;
  for (let seq = from; seq <= through; seq++) {
    const e = { kind: "event" as const, id: String(seq), seq: String(seq), prevHash: prev, hash: "", at: new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString(), type: "t", actorType: "system", actorId: "x", agentId: null, taskId: null, outcome: null, effect: null, reason: `r|${seq}`, ruleId: null, dataText: `{"i": ${seq}}`, recordedAt: seq % 2 === 0 ? new Date(Date.UTC(2026, 0, 1, 0, 5, seq)).toISOString() : null };
    e.hash = eventHash({ ...e, seq: BigInt(seq), at: new Date(e.at) });
    prev = e.hash;
    events.push(e);
  }
  // Checkpoint 1 in the middle of the segment, 2 (the segment's own) at its end.
  const mid = events[Math.floor(events.length / 2) - 1]!;
  const first = signChainedCheckpoint(seed, BigInt(mid.seq), mid.hash, { number: 1n, signedAt: new Date("2026-01-02T00:00:00.000Z"), prevSignature: null });
  const cp = signChainedCheckpoint(seed, BigInt(through), prev, { number: 2n, signedAt: new Date("2026-01-02T00:00:10.000Z"), prevSignature: first.signature });
  const header = { format: "bulkhead-audit-archive", version, fromSeq: String(from), throughSeq: String(through), anchorPrevHash: anchor, events: String(through - from + 1), checkpoint: { number: "2", seq: String(through), hash: prev, keyId: cp.keyId } };
  const lines = [header, ...events, archivedCheckpoint(first), archivedCheckpoint(cp)].map((l) => JSON.stringify(l));
  return `${lines.join("\n")}\n`;
}

function manifestFor(text: string, over: Partial<ArchiveManifest> = {}): ArchiveManifest {
  const header = JSON.parse(text.split("\n")[0]!);
  if (header.version === 2) return signedManifestFor(text, seed, over);
  return { format: "bulkhead-audit-archive-manifest", version: 1, file: "a.jsonl", sha256: createHash("sha256").update(text).digest("hex"), size: Buffer.byteLength(text), fromSeq: header.fromSeq, throughSeq: header.throughSeq, events: header.events, anchorPrevHash: header.anchorPrevHash, checkpoint: header.checkpoint, createdAt: new Date().toISOString(), ...over };
}

/** The manifest of version 2, signed by `by` (the signer's key, or an attacker's). */
function signedManifestFor(text: string, by: Buffer, over: Partial<ArchiveManifest> = {}): ArchiveManifest {
  const header = JSON.parse(text.split("\n")[0]!);
  const m = { format: "bulkhead-audit-archive-manifest" as const, file: "a.jsonl", sha256: createHash("sha256").update(text).digest("hex"), size: Buffer.byteLength(text), fromSeq: header.fromSeq, throughSeq: header.throughSeq, events: header.events, anchorPrevHash: header.anchorPrevHash, checkpoint: header.checkpoint, createdAt: new Date().toISOString() };
  return { ...signManifest(by, m), ...over };
}

/** What an attacker with write access but no signing key can do: the digest, size and segment recomputed from the changed file, the signature (if any) kept. */
function recomputed(text: string, manifest: ArchiveManifest): ArchiveManifest {
  const h = JSON.parse(text.split("\n")[0]!);
  const segment = { fromSeq: h.fromSeq, throughSeq: h.throughSeq, events: h.events, anchorPrevHash: h.anchorPrevHash, checkpoint: h.checkpoint };
  return { ...manifest, sha256: createHash("sha256").update(text).digest("hex"), size: Buffer.byteLength(text), ...segment };
}

/** Cuts an archive back to its first checkpoint (seq 2), with the header's range fixed to match. */
function cutTail(text: string): string {
  const l = text.split("\n").slice(0, -1);
  const header = JSON.parse(l[0]!);
  const first = JSON.parse(l[5]!);
  const fixed = { ...header, throughSeq: first.seq, events: first.seq, checkpoint: { number: first.number, seq: first.seq, hash: first.hash, keyId: first.keyId } };
  return `${[JSON.stringify(fixed), l[1], l[2], l[5]].join("\n")}\n`;
}

function check(text: string, manifest: ArchiveManifest | null = manifestFor(text), keys: CheckpointKey[] | null = [key]) {
  const v = new ArchiveVerifier(keys);
  // Fed in odd-sized pieces, as a stream would.
  const bytes = Buffer.from(text);
  for (let i = 0; i < bytes.length; i += 7) v.update(bytes.subarray(i, i + 7));
  return v.finish(manifest);
}

/** Changes an archive's lines (without the empty string after the final newline). */
const lines = (change: (l: string[]) => string[]) => (t: string) => `${change(t.split("\n").slice(0, -1)).join("\n")}\n`;

describe("audit archive format", () => {
  it("verifies a whole archive, and one anchored on an earlier segment", () => {
    expect(check(build())).toMatchObject({ ok: true, events: 4, checkpoints: 2, problems: [] });
    expect(check(build(11, 15, "a".repeat(64)))).toMatchObject({ ok: true, events: 5 });
    // Archives written before events carried their stored time still verify.
    const older = build().replace(/,"recordedAt":(null|"[^"]*")/g, "");
    expect(older).not.toContain("recordedAt");
    expect(check(older)).toMatchObject({ ok: true, events: 4 });
  });

  it.each([
    ["an edited field", (t: string) => t.replace("r|2", "r|9"), /event 2's content does not match its hash/],
    ["a dropped event", (t: string) => t.split("\n").filter((l) => !l.includes('"seq":"3","prevHash"')).join("\n"), /event 3 is missing/],
    ["a swapped anchor", (t: string) => t.replace(`"anchorPrevHash":"${GENESIS_HASH}"`, `"anchorPrevHash":"${"b".repeat(64)}"`), /event 1 does not link/],
    ["no header", (t: string) => t.split("\n").slice(1).join("\n"), /no valid header/],
    ["garbage line", (t: string) => `${t}not json\n`, /is not JSON/],
    ["a stored time that is not a time", (t: string) => t.replace('"recordedAt":"2026-01-01T00:05:02.000Z"', '"recordedAt":"yesterday"'), /event 2: recordedAt is not an ISO time/],
    // Caught by the chain and the signed checkpoints, and kept so.
    ["two events swapped", lines((l) => [l[0]!, l[2]!, l[1]!, ...l.slice(3)]), /event 1 is missing \(line 2 holds seq 2\)/],
    ["the last event dropped", lines((l) => l.filter((_, i) => i !== 4)), /the archive ends at seq 3, not at seq 4/],
    ["the final checkpoint dropped", lines((l) => l.slice(0, 6)), /the segment's checkpoint 2 is not in the archive/],
    ["a changed key id", (t: string) => t.replaceAll(key.keyId, "ack_0000000000000000"), /not signed by a trusted checkpoint key/],
    ["an event line added after the checkpoints", lines((l) => [...l, l[2]!]), /event 2 after the checkpoints/],
    // Not covered by the chain: refused by the strict parser.
    ["an added field on an event", (t: string) => t.replace('"reason":"r|2"', '"reason":"r|2","note":"approved by alice"'), /line 3: the event has field\(s\) an archive does not have: note/],
    ["an added field on the header", lines((l) => [l[0]!.replace(/}$/, ',"note":"x"}'), ...l.slice(1)]), /the header has field\(s\) an archive does not have: note/],
    ["an added field on a checkpoint", lines((l) => [...l.slice(0, 6), l[6]!.replace(/}$/, ',"note":"x"}')]), /the checkpoint has field\(s\) an archive does not have: note/],
    ["a missing field on an event", (t: string) => t.replace(',"ruleId":null,"dataText":"{\\"i\\": 3}"', ',"dataText":"{\\"i\\": 3}"'), /line 4: the event is missing field\(s\): ruleId/],
    ["a repeated key (JSON.parse keeps the last)", (t: string) => t.replace('"reason":"r|2"', '"reason":"r|9","reason":"r|2"'), /line 3 is not written as Bulkhead writes it/],
    ["spacing inside a line", (t: string) => t.replace('"type":"t"', '"type": "t"'), /is not written as Bulkhead writes it/],
    ["fields in another order", (t: string) => t.replace('"type":"t","actorType":"system"', '"actorType":"system","type":"t"'), /fields in another order/],
    ["a checkpoint line duplicated", lines((l) => [...l.slice(0, 6), l[5]!, l[6]!]), /line 7: checkpoint 1 appears twice/],
    ["the segment's checkpoint duplicated", lines((l) => [...l, l[6]!]), /line 8: checkpoint 2 comes after the segment's checkpoint 2/],
    ["checkpoints in another order", lines((l) => [...l.slice(0, 5), l[6]!, l[5]!]), /checkpoint 1 comes after the segment's checkpoint 2/],
    ["a blank line between events", lines((l) => [...l.slice(0, 3), "", ...l.slice(3)]), /line 4 is blank/],
    ["a blank line at the end", (t: string) => `${t}\n`, /line 8 is blank/],
    ["no newline at the end", (t: string) => t.slice(0, -1), /does not end with a newline after line 7/],
    ["recordedAt dropped from one event of an archive that carries it", (t: string) => t.replace(',"recordedAt":"2026-01-01T00:05:02.000Z"', ""), /line 3: the event is missing field\(s\): recordedAt/],
    ["a carriage return", (t: string) => t.replace("\n", "\r\n"), /line 1 is not written as Bulkhead writes it/],
  ])("reports %s", (_name, change, problem) => {
    const text = change(build());
    // The manifest is recomputed too: what is found must come from the chain itself.
    const result = check(text, manifestFor(text));
    expect(result.ok).toBe(false);
    expect(result.problems.join("\n")).toMatch(problem);
  });

  it("verifies an archive of version 2 with its signed manifest, and says what an unsigned one (version 1) does not vouch for", () => {
    expect(check(build(1, 4, GENESIS_HASH, 2))).toMatchObject({ ok: true, events: 4, checkpoints: 2, manifestSigned: true, unsignedParts: [] });
    const older = check(build());
    expect(older).toMatchObject({ ok: true, manifestSigned: false });
    expect(older.unsignedParts.join("\n")).toMatch(/id and recordedAt[\s\S]*where the segment starts[\s\S]*a tail cut back to an earlier checkpoint/);
    // Without keys nothing is signature-checked, the manifest included.
    expect(check(build(1, 4, GENESIS_HASH, 2), undefined, null)).toMatchObject({ ok: true, signaturesChecked: false, manifestSigned: false });
  });

  /**
   * What the chain does not cover, changed with the manifest's digest and size recomputed: in an
   * archive of version 2 the manifest's signature no longer verifies; in one of version 1 the
   * verifier says plainly that only the unsigned manifest vouches for it.
   */
  it.each([
    ["a changed recordedAt", (t: string) => t.replace('"recordedAt":"2026-01-01T00:05:02.000Z"', '"recordedAt":"2026-03-01T00:05:02.000Z"'), /id and recordedAt/],
    ["a changed event id", (t: string) => t.replace('"id":"3"', '"id":"99"'), /id and recordedAt/],
    ["a tail cut back to an earlier checkpoint, with the header's range fixed", cutTail, /a tail cut back to an earlier checkpoint/],
  ])("%s: refused in version 2 by the manifest's signature, named as unsigned in version 1", (_name, change, unsigned) => {
    const v2 = build(1, 4, GENESIS_HASH, 2);
    const changed2 = change(v2);
    expect(changed2).not.toBe(v2);
    const r2 = check(changed2, recomputed(changed2, manifestFor(v2)));
    expect(r2.ok).toBe(false);
    expect(r2.problems.join("\n")).toMatch(/the manifest's signature \(key ack_[0-9a-f]{16}\) does not verify under a trusted checkpoint key/);
    // Signed again by a key of the attacker's own: not a trusted key.
    const attacker = randomBytes(32);
    expect(check(changed2, signedManifestFor(changed2, attacker)).problems.join("\n")).toMatch(/does not verify under a trusted checkpoint key/);

    const v1 = build();
    const changed1 = change(v1);
    const r1 = check(changed1, recomputed(changed1, manifestFor(v1)));
    expect(r1).toMatchObject({ ok: true, manifestSigned: false });
    expect(r1.unsignedParts.join("\n")).toMatch(unsigned);
  });

  it("refuses an archive of version 2 with an unsigned manifest, and events of version 2 without recordedAt", () => {
    const v2 = build(1, 4, GENESIS_HASH, 2);
    const unsigned = { ...manifestFor(build()), ...recomputed(v2, manifestFor(build())), version: 1 as const };
    expect(check(v2, unsigned).problems.join("\n")).toMatch(/header is of version 2 but its manifest of version 1: an archive of version 2 has a signed manifest/);
    const bare = v2.replace(/,"recordedAt":(null|"[^"]*")/g, "");
    expect(check(bare, manifestFor(bare)).problems.join("\n")).toMatch(/the event is missing field\(s\): recordedAt/);
    // The signature in another encoding than the one written is refused when the manifest is read.
    const m = manifestFor(v2);
    expect(parseManifest(JSON.stringify({ ...m, signature: `${m.signature}==` }))).toMatch(/unpadded base64url/);
    expect(parseManifest(JSON.stringify({ ...m, note: "approved" }))).toMatch(/has field\(s\) an archive does not have: note/);
    expect(parseManifest(JSON.stringify({ ...m, version: 1 }))).toMatch(/has field\(s\) an archive does not have: keyId, signature/);
  });

  it("reports a changed file against the manifest, a missing manifest and an untrusted key", () => {
    const text = build();
    expect(check(`${text}\n`, manifestFor(text)).problems.join("\n")).toMatch(/the archive was changed/);
    expect(check(text, null).problems).toContain("no manifest: the file's digest cannot be checked");
    const other = checkpointVerificationKey(randomBytes(32));
    expect(check(text, manifestFor(text), [other]).problems.join("\n")).toMatch(/not signed by a trusted checkpoint key/);
    expect(check(text, manifestFor(text, { throughSeq: "3" })).problems.join("\n")).toMatch(/another segment/);
  });

  it("names files by their seq range and parses manifests strictly", () => {
    expect(archiveFileName(1n, 42n)).toBe("audit-00000000000000000001-00000000000000000042.jsonl");
    expect(parseManifest("{")).toMatch(/not JSON/);
    expect(parseManifest(JSON.stringify({ format: "x" }))).toMatch(/not a Bulkhead/);
    expect(typeof parseManifest(JSON.stringify(manifestFor(build())))).toBe("object");
  });
});

describe("audit retention configuration", () => {
  it("is off unless a positive number of days is set, and names a bad value", () => {
    expect(loadAuditRetentionConfig("/data", {})).toEqual({ retentionDays: null, archiveDir: "/data/audit-archive" });
    expect(loadAuditRetentionConfig("/data", { BULKHEAD_AUDIT_RETENTION_DAYS: "", BULKHEAD_AUDIT_ARCHIVE_DIR: "/arch" })).toEqual({ retentionDays: null, archiveDir: "/arch" });
    expect(loadAuditRetentionConfig("/data", { BULKHEAD_AUDIT_RETENTION_DAYS: "90" }).retentionDays).toBe(90);
    for (const bad of ["abc", "-1", "1.5", "100000"]) {
      expect(() => loadAuditRetentionConfig("/data", { BULKHEAD_AUDIT_RETENTION_DAYS: bad })).toThrow(ConfigError);
      expect(() => loadAuditRetentionConfig("/data", { BULKHEAD_AUDIT_RETENTION_DAYS: bad })).toThrow(/BULKHEAD_AUDIT_RETENTION_DAYS/);
    }
  });
});
