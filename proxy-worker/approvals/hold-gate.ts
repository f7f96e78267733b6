import pg from "pg";
import type { Db } from "@/lib/db/client";
import type { Prisma } from "@/lib/generated/prisma/client";
import type { Logger } from "@/lib/log";
import { canonicalUrl } from "@/lib/semantics/canonical";
import { requestDigest } from "../proxy/digest";
import type { HoldGate } from "../proxy/pipeline";

export const APPROVAL_CHANNEL = "bulkhead_approvals";

type HoldResult = Awaited<ReturnType<HoldGate["hold"]>>;

/**
 * Holds a request until a person decides. The approval row is bound to a digest of the exact
 * request; the waiter wakes on NOTIFY (with a slow poll as a safety net), and consumes an
 * approval with one conditional update, so it is used once, only for this request, and only
 * before it expires. A timeout expires the approval (so a late approval does nothing) and denies.
 */
export class PostgresHoldGate implements HoldGate {
  private listener: pg.Client | null = null;
  private readonly waiters = new Map<string, () => void>();
  private closed = false;

  constructor(
    private readonly db: Db,
    private readonly databaseUrl: string,
    private readonly log: Logger,
    private readonly timeoutMs: number,
    private readonly pollMs = 2000,
  ) {}

  async start(): Promise<void> {
    await this.listen();
  }

  private async listen(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client({ connectionString: this.databaseUrl, connectionTimeoutMillis: 5000 });
    client.on("notification", (n) => {
      if (n.payload) this.waiters.get(n.payload)?.();
    });
    client.on("error", (error) => {
      this.log.warn({ err: error.message }, "approval listener lost its connection; waiters fall back to polling");
      this.listener = null;
      client.end().catch(() => undefined);
      setTimeout(() => void this.listen(), 1000).unref();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${APPROVAL_CHANNEL}`);
      this.listener = client;
      for (const wake of this.waiters.values()) wake(); // catch up on anything missed
    } catch (error) {
      this.log.warn({ err: error instanceof Error ? error.message : String(error) }, "cannot listen for approvals yet");
      await client.end().catch(() => undefined);
      setTimeout(() => void this.listen(), 1000).unref();
    }
  }

  async hold(input: Parameters<HoldGate["hold"]>[0]): Promise<HoldResult> {
    const { auth, request } = input;
    const digest = requestDigest(auth.taskId, auth.agentId, request);
    const expiresAt = new Date(Date.now() + this.timeoutMs);
    const approval = await this.db.approval.create({
      data: {
        taskId: auth.taskId,
        agentId: auth.agentId,
        requestDigest: digest,
        method: request.method,
        url: canonicalUrl(request).slice(0, 4096),
        actions: input.actions as unknown as Prisma.InputJsonValue,
        reason: input.reason.slice(0, 2000),
        expiresAt,
      },
      select: { id: true },
    });
    const id = approval.id;
    return new Promise<HoldResult>((resolve) => {
      let settled = false;
      let checking = false;
      const finish = (result: HoldResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearInterval(poll);
        this.waiters.delete(id);
        resolve(result);
      };
      const check = async () => {
        if (settled || checking) return;
        checking = true;
        try {
          const result = await this.settle(id, digest);
          if (result) finish(result);
        } catch (error) {
          this.log.warn({ err: error instanceof Error ? error.message : String(error), approvalId: id }, "could not check approval");
        } finally {
          checking = false;
        }
      };
      this.waiters.set(id, () => void check());
      const poll = setInterval(() => void check(), this.pollMs);
      const timer = setTimeout(async () => {
        // Expire it unless it was decided in the meantime; then settle whatever it is.
        await this.db.approval.updateMany({ where: { id, status: "pending" }, data: { status: "expired" } }).catch(() => undefined);
        const result = await this.settle(id, digest).catch(() => null);
        finish(result ?? { outcome: "expired", approvalId: id, reason: "no one approved the request in time" });
      }, this.timeoutMs);
    });
  }

  /** The outcome if the approval has been decided (consuming an approval), else null. */
  private async settle(id: string, digest: string): Promise<HoldResult | null> {
    const row = await this.db.approval.findUnique({ where: { id }, select: { status: true, decisionNote: true, decidedBy: { select: { email: true } } } });
    if (!row || row.status === "pending") return null;
    if (row.status === "approved") {
      const consumed = await this.db.approval.updateMany({
        where: { id, status: "approved", requestDigest: digest, expiresAt: { gt: new Date() } },
        data: { status: "consumed", consumedAt: new Date() },
      });
      if (consumed.count === 1) return { outcome: "approved", approvalId: id, decidedBy: row.decidedBy?.email ?? null };
      return { outcome: "expired", approvalId: id, reason: "the approval arrived after the request timed out" };
    }
    if (row.status === "denied") return { outcome: "denied", approvalId: id, reason: `a person denied the request${row.decisionNote ? `: ${row.decisionNote}` : ""}` };
    return { outcome: "expired", approvalId: id, reason: row.status === "consumed" ? "the approval was already used" : "no one approved the request in time" };
  }

  pending(): number {
    return this.waiters.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.listener?.end().catch(() => undefined);
    this.listener = null;
  }
}
