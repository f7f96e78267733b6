-- A held request answered at once with 202 (202-and-poll): nobody waits on it, so the dashboard
-- marks it expired after its deadline (which sends its `expired` webhook).
ALTER TABLE "approvals" ADD COLUMN "poll_mode" BOOLEAN NOT NULL DEFAULT false;

-- Outgoing webhooks for approvals (hold, decided, expired, cancelled). The dashboard sends them
-- and alone holds their secrets (sealed under the dashboard key); the worker never reads them.
CREATE TABLE "webhooks" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "name" TEXT NOT NULL,
    "url" TEXT NOT NULL,
    "format" TEXT NOT NULL DEFAULT 'json',
    "events" JSONB NOT NULL,
    "secret_sealed" TEXT NOT NULL,
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "created_by_id" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "webhooks_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "webhooks_format_check" CHECK ("format" IN ('json', 'slack'))
);
ALTER TABLE "webhooks" ADD CONSTRAINT "webhooks_created_by_id_fkey" FOREIGN KEY ("created_by_id") REFERENCES "users"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- The delivery queue: one row per (webhook, approval event), written by a trigger in the same
-- transaction as the approval's change, so nothing is lost across restarts and no process's
-- request path waits for a receiver. The sender leases due rows (next_attempt_at) and retries
-- with backoff.
CREATE TABLE "webhook_deliveries" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "webhook_id" UUID NOT NULL,
    "approval_id" UUID NOT NULL,
    "event" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'pending',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "next_attempt_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_status" INTEGER,
    "last_error" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "delivered_at" TIMESTAMPTZ(3),
    CONSTRAINT "webhook_deliveries_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "webhook_deliveries_status_check" CHECK ("status" IN ('pending', 'delivered', 'failed'))
);
CREATE INDEX "webhook_deliveries_status_next_attempt_at_idx" ON "webhook_deliveries"("status", "next_attempt_at");
CREATE INDEX "webhook_deliveries_webhook_id_created_at_idx" ON "webhook_deliveries"("webhook_id", "created_at");
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_webhook_id_fkey" FOREIGN KEY ("webhook_id") REFERENCES "webhooks"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_approval_id_fkey" FOREIGN KEY ("approval_id") REFERENCES "approvals"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- Runs as its owner, so that the worker (which creates and expires approvals) queues deliveries
-- without any right on the queue or the webhooks; the pinned search_path keeps a caller from
-- redirecting a name inside it.
CREATE FUNCTION "bulkhead_enqueue_webhooks"() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog, public, pg_temp
  AS $$
DECLARE
  ev TEXT;
BEGIN
  IF TG_OP = 'INSERT' THEN
    ev := 'hold';
  ELSIF NEW."status" IS NOT DISTINCT FROM OLD."status" THEN
    RETURN NULL;
  ELSIF NEW."status" IN ('approved', 'denied') THEN
    ev := 'decided';
  ELSIF NEW."status" = 'expired' THEN
    ev := 'expired';
  ELSIF NEW."status" = 'cancelled' THEN
    ev := 'cancelled';
  ELSE
    RETURN NULL;
  END IF;
  INSERT INTO "webhook_deliveries" ("webhook_id", "approval_id", "event", "payload")
    SELECT w."id", NEW."id", ev, jsonb_build_object(
      'event', ev, 'approvalId', NEW."id", 'status', NEW."status", 'taskId', NEW."task_id", 'agentId', NEW."agent_id",
      'method', NEW."method", 'url', NEW."url", 'actions', NEW."actions", 'expiresAt', NEW."expires_at",
      'cancelReason', NEW."cancel_reason", 'at', CURRENT_TIMESTAMP)
      FROM "webhooks" w WHERE w."enabled" AND w."events" ? ev;
  RETURN NULL;
END;
$$;
REVOKE EXECUTE ON FUNCTION "bulkhead_enqueue_webhooks"() FROM PUBLIC;
CREATE TRIGGER "approvals_webhooks" AFTER INSERT OR UPDATE OF "status" ON "approvals"
  FOR EACH ROW EXECUTE FUNCTION "bulkhead_enqueue_webhooks"();
