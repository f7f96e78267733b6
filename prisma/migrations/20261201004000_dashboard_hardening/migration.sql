-- Step-up: when the person behind a session last proved who they are, and how they can do it again.
-- Existing sessions count as authenticated when they were created.
ALTER TABLE "sessions" ADD COLUMN "authenticated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP;
ALTER TABLE "sessions" ADD COLUMN "auth_method" TEXT NOT NULL DEFAULT 'password';
UPDATE "sessions" SET "authenticated_at" = "created_at";

-- Sign-in throttling: failures per account and per client address, one row per key.
CREATE TABLE "sign_in_throttles" (
    "key" TEXT NOT NULL,
    "failures" INTEGER NOT NULL DEFAULT 0,
    "last_failure_at" TIMESTAMPTZ(3) NOT NULL,
    "locked_until" TIMESTAMPTZ(3),
    "refused" INTEGER NOT NULL DEFAULT 0,

    CONSTRAINT "sign_in_throttles_pkey" PRIMARY KEY ("key")
);

CREATE INDEX "sign_in_throttles_last_failure_at_idx" ON "sign_in_throttles"("last_failure_at");
