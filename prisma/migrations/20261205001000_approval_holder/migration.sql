-- A held request lives in the worker process that holds it: when that process dies (killed,
-- crashed) nobody can release it any more, yet its approval stayed pending for a person to grant.
-- Each blocking hold now records the worker that holds it (its audit log's id, which outlives the
-- process: a worker restarted in the same slot opens the same log), so the next start of that
-- worker cancels what its predecessor left behind. 202-and-poll holds have none: any worker
-- redeems them.
ALTER TABLE "approvals" ADD COLUMN "held_by" TEXT;
