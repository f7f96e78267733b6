-- Secrets a credential no longer injects stay redacted for a retention window, every one of them:
-- a rotation kept only the last replaced secret (credentials.retired_secret_sealed, migration
-- 20261206006000), so rotating twice let the first one through, and deleting a credential let its
-- secret through at once, while an upstream's request log still holds it and it is often still
-- valid there until revoked. Each is kept here, sealed as it was (the dashboard cannot open a
-- credential; it moves the ciphertext, whose associated data is the credential's id), by the
-- service it served. The worker redacts them, never injects them (docs/proxy.md, Redaction);
-- the dashboard prunes them by age and by count per service (docs/vault-and-api.md).

-- CreateEnum
CREATE TYPE "RetiredSecretReason" AS ENUM ('rotated', 'deleted');

-- CreateTable
CREATE TABLE "retired_secrets" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "credential_id" UUID NOT NULL,
    "credential_name" TEXT NOT NULL,
    "service_id" TEXT,
    "scheme" TEXT NOT NULL,
    "host" TEXT NOT NULL,
    "port" INTEGER NOT NULL,
    "header_template" TEXT NOT NULL,
    "secret_sealed" TEXT NOT NULL,
    "reason" "RetiredSecretReason" NOT NULL,
    "retired_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "retired_secrets_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "retired_secrets_service_id_retired_at_idx" ON "retired_secrets"("service_id", "retired_at");

-- CreateIndex
CREATE INDEX "retired_secrets_retired_at_idx" ON "retired_secrets"("retired_at");

-- The last rotation's secret of each credential moves over, as a rotation at the credential's
-- rotated_at (the column was written only by rotations, which set both).
INSERT INTO "retired_secrets" ("credential_id", "credential_name", "service_id", "scheme", "host", "port", "header_template", "secret_sealed", "reason", "retired_at")
SELECT "id", "name", "service_id", "scheme", "host", "port", "header_template", "retired_secret_sealed", 'rotated', COALESCE("rotated_at", CURRENT_TIMESTAMP)
  FROM "credentials"
 WHERE "retired_secret_sealed" IS NOT NULL;

-- Nothing reads the column any more (the worker and master-key rotation use the table); a worker
-- of the previous version would fail its credential load, loudly, and keep its last set.
ALTER TABLE "credentials" DROP COLUMN "retired_secret_sealed";

-- A retired secret written, pruned or resealed changes what workers redact: they re-read the
-- credentials and retired secrets, as for a change to a credential ("retired_secrets:<credential
-- id>", proxy-worker/policy/changes.ts). Rotations and deletions notify through the credential
-- anyway; this covers pruning and resealing on their own.
CREATE TRIGGER "retired_secrets_notify_policy" AFTER INSERT OR DELETE OR UPDATE OF "secret_sealed" ON "retired_secrets"
  FOR EACH ROW EXECUTE FUNCTION "bulkhead_notify_policy_row"('credential_id');
