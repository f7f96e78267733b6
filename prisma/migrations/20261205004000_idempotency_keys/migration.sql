-- Idempotency-Key for the admin API's writes (lib/http/idempotency.ts): one row per principal
-- (an API key or a person) and key, claimed by the first request, then holding the status and
-- the sealed body of its answer so that a retry is answered the same without running again.
-- Kept 24 hours; the dashboard deletes expired rows as it claims new ones.
CREATE TABLE "idempotency_keys" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "principal" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "fingerprint" TEXT NOT NULL,
    "claim" UUID NOT NULL,
    "claimed_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "status_code" INTEGER,
    "response_sealed" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "completed_at" TIMESTAMPTZ(3),

    CONSTRAINT "idempotency_keys_pkey" PRIMARY KEY ("id")
);

CREATE UNIQUE INDEX "idempotency_keys_principal_key_key" ON "idempotency_keys"("principal", "key");

CREATE INDEX "idempotency_keys_created_at_idx" ON "idempotency_keys"("created_at");
