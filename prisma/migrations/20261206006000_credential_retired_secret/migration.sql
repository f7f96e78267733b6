-- The secret a rotation replaced, sealed as it was (the dashboard cannot open a credential, so it
-- moves the ciphertext): the worker redacts it from answers, never injects it (docs/proxy.md,
-- Redaction). Only the last rotation's is kept.
ALTER TABLE "credentials" ADD COLUMN "retired_secret_sealed" TEXT;
