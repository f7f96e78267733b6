import { createHash, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { eventHash, GENESIS_HASH } from "@/lib/audit/chain";
import { checkpointVerificationKey, signChainedCheckpoint, type CheckpointKey } from "@/lib/audit/checkpoints";
import { ArchiveVerifier, archivedCheckpoint, archiveFileName, parseManifest, type ArchivedEvent, type ArchiveManifest } from "@/lib/audit/retention/archive-format";
import { loadAuditRetentionConfig } from "@/lib/config/audit-retention";
import { ConfigError } from "@/lib/config/env";

const seed = randomBytes(32);
const key = checkpointVerificationKey(seed);

/** An archive of events from..through chained from `anchor`, ending at a signed checkpoint. */
function build(from = 1, through = 4, anchor = GENESIS_HASH) {
  const events: ArchivedEvent[] = [];
  let prev = anchor;
  for (let seq = from; seq <= through; seq++) {
    const e = { kind: "event" as const, id: String(seq), seq: String(seq), prevHash: prev, hash: "", at: new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString(), type: "t", actorType: "system", actorId: "x", agentId: null, taskId: null, outcome: null, effect: null, reason: `r|${seq}`, ruleId: null, dataText: `{"i": ${seq}}`, recordedAt: seq % 2 === 0 ? new Date(Date.UTC(2026, 0, 1, 0, 5, seq)).toISOString() : null };
    e.hash = eventHash({ ...e, seq: BigInt(seq), at: new Date(e.at) });
    prev = e.hash;
    events.push(e);
  }
  const cp = signChainedCheckpoint(seed, BigInt(through), prev, { number: 1n, signedAt: new Date("2026-01-02T00:00:00.000Z"), prevSignature: null });
  const header = { format: "bulkhead-audit-archive", version: 1, fromSeq: String(from), throughSeq: String(through), anchorPrevHash: anchor, events: String(through - from + 1), checkpoint: { number: "1", seq: String(through), hash: prev, keyId: cp.keyId } };
  const lines = [header, ...events, archivedCheckpoint(cp)].map((l) => JSON.stringify(l));
  return `${lines.join("\n")}\n`;
}

function manifestFor(text: string, over: Partial<ArchiveManifest> = {}): ArchiveManifest {
  const header = JSON.parse(text.split("\n")[0]!);
  return { format: "bulkhead-audit-archive-manifest", version: 1, file: "a.jsonl", sha256: createHash("sha256").update(text).digest("hex"), size: Buffer.byteLength(text), fromSeq: header.fromSeq, throughSeq: header.throughSeq, events: header.events, anchorPrevHash: header.anchorPrevHash, checkpoint: header.checkpoint, createdAt: new Date().toISOString(), ...over };
}

function check(text: string, manifest: ArchiveManifest | null = manifestFor(text), keys: CheckpointKey[] | null = [key]) {
  const v = new ArchiveVerifier(keys);
  // Fed in odd-sized pieces, as a stream would.
  const bytes = Buffer.from(text);
  for (let i = 0; i < bytes.length; i += 7) v.update(bytes.subarray(i, i + 7));
  for (const line of text.split("\n")) v.line(line);
  return v.finish(manifest);
}

describe("audit archive format", () => {
  it("verifies a whole archive, and one anchored on an earlier segment", () => {
    expect(check(build())).toMatchObject({ ok: true, events: 4, checkpoints: 1, problems: [] });
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
  ])("reports %s", (_name, change, problem) => {
    const text = change(build());
    // The manifest is recomputed too: what is found must come from the chain itself.
    const result = check(text, manifestFor(text));
    expect(result.ok).toBe(false);
    expect(result.problems.join("\n")).toMatch(problem);
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
