-- The approval card: what a person reads before deciding is the request itself, so the worker
-- keeps the headers that matter and the whole body (bounded by BULKHEAD_MAX_BODY_BYTES) next to
-- the digest that binds the approval to it, and the policy version the decision was made under.
-- How many distinct people must approve is fixed when the request is held.
ALTER TABLE "approvals" ADD COLUMN "request_headers" JSONB NOT NULL DEFAULT '{}',
  ADD COLUMN "request_body" BYTEA,
  ADD COLUMN "body_size" INTEGER NOT NULL DEFAULT 0,
  ADD COLUMN "policy_version" INTEGER,
  ADD COLUMN "required_approvals" INTEGER NOT NULL DEFAULT 1;

-- One row per person who approved (N distinct approvers): the primary key makes a second vote
-- by the same person impossible.
CREATE TABLE "approval_votes" (
    "approval_id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "note" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "approval_votes_pkey" PRIMARY KEY ("approval_id", "user_id")
);
ALTER TABLE "approval_votes" ADD CONSTRAINT "approval_votes_approval_id_fkey" FOREIGN KEY ("approval_id") REFERENCES "approvals"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "approval_votes" ADD CONSTRAINT "approval_votes_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- Approvers responsible for some agents or services only: a user with rows here sees and decides
-- only the approvals that touch one of them; a user with none decides all.
CREATE TABLE "approver_scopes" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "user_id" UUID NOT NULL,
    "kind" TEXT NOT NULL,
    "value" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "approver_scopes_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "approver_scopes_kind_check" CHECK ("kind" IN ('agent', 'service'))
);
CREATE UNIQUE INDEX "approver_scopes_user_id_kind_value_key" ON "approver_scopes"("user_id", "kind", "value");
ALTER TABLE "approver_scopes" ADD CONSTRAINT "approver_scopes_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;
