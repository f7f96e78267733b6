-- Kill switches cancel held requests: ending, expiring or revoking a task, suspending its agent or
-- revoking the token that made the request moves its pending (or approved, not yet used) approvals
-- to "cancelled", with the reason, in the same transaction as the change. The existing
-- approvals_notify trigger wakes the worker holding the request when the status changes.
-- (ADD VALUE may run inside the migration's transaction; nothing below uses the new value.)
ALTER TYPE "ApprovalStatus" ADD VALUE 'cancelled';

-- The token that made the request (null for sandbox-identified requests), so revoking it
-- cancels its approvals; when and why an approval was cancelled.
ALTER TABLE "approvals" ADD COLUMN "jti" TEXT,
  ADD COLUMN "cancelled_at" TIMESTAMPTZ(3),
  ADD COLUMN "cancel_reason" TEXT;
