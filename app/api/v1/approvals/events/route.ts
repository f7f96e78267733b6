import { approvalsPulse } from "@/lib/approvals/live";
import { StreamSlots, streamOwner } from "@/lib/approvals/live-slots";
import { actorStillValid } from "@/lib/auth/actor-still-valid";
import { getDb } from "@/lib/db/client";
import { AppError } from "@/lib/errors/app-error";
import { apiRoute } from "@/lib/http/route";
import { methodsNotAllowed } from "@/lib/http/method-not-allowed";

export const dynamic = "force-dynamic";

const TICK_MS = 1000;
/** One per dashboard process: every stream open here, per person or API key and in all. */
const slots = new StreamSlots();

/**
 * Server-sent events for the Approvals list and the nav badge: an `approvals` event with the
 * pending count and the version of what the caller may see (approvalsPulse's fingerprint) when
 * the stream opens and whenever that changes (checked each second), and a comment
 * every 15 s to keep proxies from closing the stream. Read-only, like any GET. Open streams are
 * bounded per person (or API key) and in all (lib/approvals/live-slots.ts): one more is a 429.
 * The caller is checked again on every tick (lib/auth/actor-still-valid.ts): once its session is
 * signed out or expired, its API key revoked, its user disabled or its role changed, the stream
 * ends with an `end` event, and nothing more is sent; so does the stream of a session that has
 * re-authenticated since it opened (its token was rotated: a copied cookie is signed out then).
 */
export const GET = apiRoute("read", async ({ actor, request }) => {
  const slot = slots.acquire(streamOwner(actor));
  if ("refused" in slot) {
    const why = slot.refused === "actor" ? `you already have ${slots.perActor} live approval streams open (close a dashboard tab)` : "the dashboard has as many live approval streams open as it serves";
    throw new AppError("RATE_LIMITED", `Too many live streams: ${why}.`, { details: { retryAfterSeconds: 5 } });
  }
  const db = getDb();
  const encoder = new TextEncoder();
  let timer: ReturnType<typeof setTimeout> | null = null;
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      let last = "";
      let ticks = 0;
      const stop = () => {
        if (timer) clearTimeout(timer);
        timer = null;
        slot.release();
        try {
          controller.close();
        } catch {
          // already closed
        }
      };
      request.signal.addEventListener("abort", stop);
      // Gone before the stream started: its slot is freed now, not never.
      if (request.signal.aborted) return stop();
      const tick = async () => {
        try {
          if (!(await actorStillValid(db, actor, "read", undefined, undefined, { sameSignIn: true }))) {
            controller.enqueue(encoder.encode(`event: end\ndata: ${JSON.stringify({ reason: "credentials_no_longer_valid" })}\n\n`));
            return stop();
          }
          const pulse = await approvalsPulse(db, actor);
          if (pulse.fingerprint !== last) {
            last = pulse.fingerprint;
            controller.enqueue(encoder.encode(`event: approvals\ndata: ${JSON.stringify({ pending: pulse.pending, version: pulse.fingerprint })}\n\n`));
          } else if (++ticks % 15 === 0) controller.enqueue(encoder.encode(": keep-alive\n\n"));
        } catch {
          return stop();
        }
        if (!request.signal.aborted) timer = setTimeout(() => void tick(), TICK_MS);
      };
      controller.enqueue(encoder.encode("retry: 2000\n\n"));
      void tick();
    },
    cancel() {
      if (timer) clearTimeout(timer);
      slot.release();
    },
  });
  return new Response(stream, { headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store, no-transform", "x-accel-buffering": "no" } });
});

export const { POST, PUT, PATCH, DELETE, OPTIONS } = methodsNotAllowed(["GET"]);
