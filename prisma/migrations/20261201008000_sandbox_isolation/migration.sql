-- Layer 3: sandboxes made by `bulkhead sandbox run` (network namespaces) or registered from
-- elsewhere (external). A live sandbox holds its source addresses; removal clears them (so the
-- pool can reuse them) and keeps them in "addresses" for history.
ALTER TABLE "sandboxes" ALTER COLUMN "source_address" DROP NOT NULL;
ALTER TABLE "sandboxes" ADD COLUMN "source_address_v6" TEXT;
ALTER TABLE "sandboxes" ADD COLUMN "addresses" TEXT NOT NULL DEFAULT '';
ALTER TABLE "sandboxes" ADD COLUMN "kind" TEXT NOT NULL DEFAULT 'netns';
ALTER TABLE "sandboxes" ADD COLUMN "instance_id" TEXT;
ALTER TABLE "sandboxes" ADD COLUMN "created_by" TEXT;
ALTER TABLE "sandboxes" ADD COLUMN "blocked_attempts" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "sandboxes" ADD COLUMN "removed_reason" TEXT;

UPDATE "sandboxes" SET "addresses" = "source_address" WHERE "source_address" IS NOT NULL;
UPDATE "sandboxes" SET "source_address" = NULL WHERE "removed_at" IS NOT NULL;

CREATE UNIQUE INDEX "sandboxes_source_address_v6_key" ON "sandboxes"("source_address_v6");
CREATE INDEX "sandboxes_instance_id_removed_at_idx" ON "sandboxes"("instance_id", "removed_at");

-- Workers reload their snapshot when a sandbox's binding changes, not when its blocked-attempt
-- counter moves (that would reload every snapshot on every counter flush).
DROP TRIGGER "sandboxes_notify_policy" ON "sandboxes";
CREATE TRIGGER "sandboxes_notify_policy" AFTER INSERT OR DELETE ON "sandboxes"
  FOR EACH STATEMENT EXECUTE FUNCTION "bulkhead_notify_policy"();
CREATE TRIGGER "sandboxes_notify_policy_binding" AFTER UPDATE ON "sandboxes"
  FOR EACH ROW WHEN (
    OLD."source_address" IS DISTINCT FROM NEW."source_address"
    OR OLD."source_address_v6" IS DISTINCT FROM NEW."source_address_v6"
    OR OLD."task_id" IS DISTINCT FROM NEW."task_id"
    OR OLD."removed_at" IS DISTINCT FROM NEW."removed_at"
  ) EXECUTE FUNCTION "bulkhead_notify_policy"();
