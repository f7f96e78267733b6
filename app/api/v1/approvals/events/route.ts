import { approvalsPulse } from "@/lib/approvals/live";
import { getDb } from "@/lib/db/client";
import { apiRoute } from "@/lib/http/route";

export const dynamic = "force-dynamic";

const TICK_MS = 1000;

/**
 * Server-sent events for the Approvals list and the nav badge: an `approvals` event with the
 * pending count whenever what the caller may see changes (checked each second), and a comment
 * every 15 s to keep proxies from closing the stream. Read-only, like any GET.
 */
export const GET = apiRoute("read", async ({ actor, request }) => {
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
        try {
          controller.close();
        } catch {
          // already closed
        }
      };
      request.signal.addEventListener("abort", stop);
      const tick = async () => {
        try {
          const pulse = await approvalsPulse(db, actor);
          if (pulse.fingerprint !== last) {
            last = pulse.fingerprint;
            controller.enqueue(encoder.encode(`event: approvals\ndata: ${JSON.stringify({ pending: pulse.pending })}\n\n`));
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
    },
  });
  return new Response(stream, { headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store, no-transform", "x-accel-buffering": "no" } });
});
