-- The API key a vote was cast through (null: a dashboard session). An approval given through a
-- key is the key creator's, but revoking the key (found stolen) must take back what it approved
-- and is not used yet (docs/approvals.md, "An approval not used yet goes with its approver"):
-- revocation cancels the approvals with a vote through the key that are still pending or approved
-- and unused (approver_key_revoked). Votes cast before this column existed name no key.
ALTER TABLE "approval_votes" ADD COLUMN "api_key_id" UUID;

-- Revocation finds a key's votes by it.
CREATE INDEX "approval_votes_api_key_id_idx" ON "approval_votes"("api_key_id");

ALTER TABLE "approval_votes" ADD CONSTRAINT "approval_votes_api_key_id_fkey" FOREIGN KEY ("api_key_id") REFERENCES "api_keys"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
