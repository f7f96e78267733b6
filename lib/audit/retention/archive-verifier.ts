/**
 * `ArchiveVerifier` re-verifies an archive without the database, as its bytes arrive (the
 * events' hashes are kept to match checkpoints against): every line parsed strictly (one object
 * per line, no blank line, exactly one newline at the end), the manifest's digest, every event's
 * hash, every link from the anchor to the segment's checkpoint, the checkpoints in order and
 * each once, their signatures and the manifest's (version 2) under the published keys. With a
 * manifest of version 1 (unsigned) the result lists what only that manifest vouches for.
 */
import { createHash, type Hash } from "node:crypto";
import { eventHash, GENESIS_HASH } from "../chain";
import { checkpointSignatureValid, type CheckpointKey } from "../checkpoints";
import { signedCheckpoint, type ArchivedCheckpoint, type ArchiveHeader, type ArchiveManifest, type ArchiveVerification } from "./archive-format";
import { manifestSignatureValid, UNSIGNED_MANIFEST_PARTS } from "./archive-manifest";
import { parseArchiveLine, parseCheckpoint, parseEvent, parseHeader } from "./archive-parse";

const MAX_PROBLEMS = 20;

/**
 * Feed every byte to `update`, then call `finish`. `keys`: the published checkpoint keys; null
 * checks everything but signatures (and says so).
 */
export class ArchiveVerifier {
  private readonly digest: Hash = createHash("sha256");
  private readonly decoder = new TextDecoder("utf-8", { fatal: true });
  private pending = "";
  private notText = false;
  private size = 0;
  private lineNo = 0;
  private header: ArchiveHeader | null = null;
  private readonly problems: string[] = [];
  private expectedSeq = 0n;
  private prevHash = GENESIS_HASH;
  private events = 0;
  private checkpoints = 0;
  private sawEnd = false;
  /** Whether events carry recordedAt: always in version 2, in version 1 as the first event does. */
  private recordedAt: "optional" | "required" | "absent" = "optional";
  private lastCheckpoint: ArchivedCheckpoint | null = null;
  private lastNumbered: ArchivedCheckpoint | null = null;
  private readonly signatures = new Set<string>();
  private readonly hashes = new Map<string, string>();

  constructor(private readonly keys: readonly CheckpointKey[] | null) {}

  update(bytes: Buffer): void {
    this.digest.update(bytes);
    this.size += bytes.length;
    if (this.notText) return;
    let text: string;
    try {
      text = this.decoder.decode(bytes, { stream: true });
    } catch {
      this.notText = true;
      return this.problem(`the archive is not UTF-8 text (after line ${this.lineNo})`);
    }
    const lines = (this.pending + text).split("\n");
    this.pending = lines.pop()!;
    for (const line of lines) this.line(line);
  }

  private problem(p: string): void {
    if (this.problems.length < MAX_PROBLEMS) this.problems.push(p);
  }

  private line(text: string): void {
    this.lineNo++;
    if (text === "") return this.problem(`line ${this.lineNo} is blank (an archive has one JSON object on every line)`);
    const o = parseArchiveLine(text);
    if (typeof o === "string") return this.problem(`line ${this.lineNo} ${o}`);
    if (this.lineNo === 1) {
      const h = parseHeader(o);
      if (typeof h === "string") return this.problem(h);
      this.header = h;
      this.recordedAt = h.version >= 2 ? "required" : "optional";
      this.expectedSeq = BigInt(h.fromSeq);
      this.prevHash = h.anchorPrevHash;
      return;
    }
    if (!this.header) return;
    if (o.kind === "event") return this.event(o);
    if (o.kind === "checkpoint") return this.checkpoint(o);
    this.problem(`line ${this.lineNo} is neither an event nor a checkpoint`);
  }

  private event(o: Record<string, unknown>): void {
    const e = parseEvent(o, this.recordedAt);
    if (typeof e === "string") return this.problem(`line ${this.lineNo}: ${e}`);
    this.recordedAt = e.recordedAt === undefined ? "absent" : "required";
    if (this.checkpoints > 0) return this.problem(`line ${this.lineNo}: event ${e.seq} after the checkpoints`);
    const seq = BigInt(e.seq);
    if (seq !== this.expectedSeq) this.problem(`event ${this.expectedSeq} is missing (line ${this.lineNo} holds seq ${seq})`);
    else if (e.prevHash !== this.prevHash) this.problem(`event ${seq} does not link to event ${seq - 1n} (prevHash differs)`);
    const recomputed = eventHash({ ...e, seq, at: new Date(e.at) });
    if (recomputed !== e.hash) this.problem(`event ${seq}'s content does not match its hash`);
    this.hashes.set(e.seq, e.hash);
    this.prevHash = e.hash;
    this.expectedSeq = seq + 1n;
    this.events++;
  }

  private checkpoint(o: Record<string, unknown>): void {
    const c = parseCheckpoint(o);
    if (typeof c === "string") return this.problem(`line ${this.lineNo}: ${c}`);
    const h = this.header!;
    const name = c.number !== null ? `checkpoint ${c.number}` : `the checkpoint at seq ${c.seq}`;
    this.checkpoints++;
    this.order(c, name);
    if (this.hashes.get(c.seq) !== c.hash) this.problem(`${name} signs hash ${c.hash} at seq ${c.seq}, which is not the archived event's`);
    if (this.keys !== null && !checkpointSignatureValid(signedCheckpoint(c), this.keys)) {
      this.problem(`${name} (key ${c.keyId}) is not signed by a trusted checkpoint key`);
    }
    if (c.number === h.checkpoint.number) {
      this.sawEnd = true;
      if (c.seq !== h.throughSeq || c.hash !== h.checkpoint.hash || c.keyId !== h.checkpoint.keyId) this.problem(`the segment's checkpoint ${c.number} differs from the header's`);
    }
  }

  /** In seq order (format 1 and 2 interleaved as stored), numbers rising, each once, the segment's own last. */
  private order(c: ArchivedCheckpoint, name: string): void {
    const line = `line ${this.lineNo}`;
    if (this.sawEnd) this.problem(`${line}: ${name} comes after the segment's checkpoint ${this.header!.checkpoint.number}, which is the last line`);
    else if (this.signatures.has(c.signature)) this.problem(`${line}: ${name} appears twice`);
    else if (this.lastCheckpoint && BigInt(c.seq) < BigInt(this.lastCheckpoint.seq)) this.problem(`${line}: ${name} (seq ${c.seq}) is out of order: it comes after the one at seq ${this.lastCheckpoint.seq}`);
    else if (c.number !== null && this.lastNumbered && BigInt(c.number) <= BigInt(this.lastNumbered.number!)) this.problem(`${line}: ${name} is out of order: it comes after checkpoint ${this.lastNumbered.number}`);
    else if (c.number !== null && this.lastNumbered && BigInt(c.number) === BigInt(this.lastNumbered.number!) + 1n && c.prevSignature !== this.lastNumbered.signature) {
      this.problem(`${line}: ${name} does not link to checkpoint ${this.lastNumbered.number} (prevSignature differs)`);
    }
    this.signatures.add(c.signature);
    this.lastCheckpoint = c;
    if (c.number !== null) this.lastNumbered = c;
  }

  finish(manifest: ArchiveManifest | null): ArchiveVerification {
    if (!this.notText) {
      try {
        this.pending += this.decoder.decode();
      } catch {
        this.problem("the archive is not UTF-8 text (it ends inside a character)");
      }
      if (this.pending !== "") {
        this.line(this.pending);
        this.problem(`the archive does not end with a newline after line ${this.lineNo}: it was cut short or appended to`);
      }
    }
    const h = this.header;
    if (!h) this.problem("the archive has no valid header");
    else {
      if (this.expectedSeq - 1n !== BigInt(h.throughSeq)) this.problem(`the archive ends at seq ${this.expectedSeq - 1n}, not at seq ${h.throughSeq}: events are missing`);
      if (BigInt(h.events) !== BigInt(this.events)) this.problem(`the header says ${h.events} events but the archive holds ${this.events}`);
      if (!this.sawEnd) this.problem(`the segment's checkpoint ${h.checkpoint.number} is not in the archive`);
      if (this.prevHash !== h.checkpoint.hash) this.problem(`the last archived event's hash is not the one checkpoint ${h.checkpoint.number} signed`);
    }
    if (!manifest) this.problem("no manifest: the file's digest cannot be checked");
    const manifestSigned = manifest !== null && this.manifest(manifest, h);
    return {
      ok: this.problems.length === 0,
      problems: this.problems,
      header: h,
      events: this.events,
      checkpoints: this.checkpoints,
      signaturesChecked: this.keys !== null,
      manifestSigned,
      unsignedParts: manifestSigned ? [] : UNSIGNED_MANIFEST_PARTS,
    };
  }

  /** Checks the file against the manifest and the manifest's signature; true when it is signed and verifies. */
  private manifest(m: ArchiveManifest, h: ArchiveHeader | null): boolean {
    const sha = this.digest.digest("hex");
    if (m.sha256 !== sha) this.problem(`the file's SHA-256 is ${sha}, the manifest says ${m.sha256}: the archive was changed`);
    if (m.size !== this.size) this.problem(`the file has ${this.size} bytes, the manifest says ${m.size}`);
    if (h && !sameSegment(m, h)) this.problem("the manifest describes another segment than the archive's header");
    // An archive written with a signed manifest is never vouched for by an unsigned one.
    if (h && h.version !== m.version) this.problem(`the archive's header is of version ${h.version} but its manifest of version ${m.version}${h.version === 2 ? ": an archive of version 2 has a signed manifest, and this one is not signed" : ""}`);
    if (m.version !== 2 || this.keys === null) return false;
    if (manifestSignatureValid(m, this.keys)) return true;
    this.problem(`the manifest's signature (key ${m.keyId}) does not verify under a trusted checkpoint key: nothing vouches for the file's digest`);
    return false;
  }
}

function sameSegment(m: ArchiveManifest, h: ArchiveHeader): boolean {
  const a = m.checkpoint;
  const b = h.checkpoint;
  return m.fromSeq === h.fromSeq && m.throughSeq === h.throughSeq && m.events === h.events && m.anchorPrevHash === h.anchorPrevHash && a.number === b.number && a.seq === b.seq && a.hash === b.hash && a.keyId === b.keyId;
}
