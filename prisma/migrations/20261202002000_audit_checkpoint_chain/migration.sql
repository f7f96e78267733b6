-- Checkpoints form a chain of their own (docs/audit.md, "Checkpoints outside the database").
--
-- A checkpoint of format 2 is numbered (1, 2, 3, ... with no gaps), carries the time it was
-- signed and the signature of the checkpoint before it, and its signature covers all three as
-- well as the chain head's seq and hash. Deleting a checkpoint from the middle, reordering two or
-- inserting one breaks the links, and the same checkpoints are published outside PostgreSQL by
-- the signer, which is the only holder of the key. Rows of format 1 (before this migration) have
-- NULL in the three columns and keep verifying as they did.
ALTER TABLE "audit_checkpoints"
  ADD COLUMN "number" BIGINT,
  ADD COLUMN "prev_signature" TEXT,
  ADD COLUMN "signed_at" TIMESTAMPTZ(3);

-- Either all three (format 2) or none (format 1); the first checkpoint of a chain has no
-- predecessor, so prev_signature may be NULL only with number 1.
ALTER TABLE "audit_checkpoints" ADD CONSTRAINT "audit_checkpoints_chain_fields"
  CHECK (("number" IS NULL AND "prev_signature" IS NULL AND "signed_at" IS NULL)
      OR ("number" IS NOT NULL AND "number" >= 1 AND "signed_at" IS NOT NULL AND ("prev_signature" IS NOT NULL OR "number" = 1)));

CREATE UNIQUE INDEX "audit_checkpoints_number_key" ON "audit_checkpoints"("number");
