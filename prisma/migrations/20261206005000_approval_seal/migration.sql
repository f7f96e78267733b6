-- The worker that records a hold seals its row (docs/approvals.md, "The seal"): an HMAC, with a
-- key derived from the worker's process key that no database role holds, over the row's id, task,
-- agent, token, digest and everything its card shows. A 202 grant whose row carries no valid seal
-- releases nothing, so a row inserted by anyone else holding the worker's database role (a card
-- showing a read, bound to a destructive request's digest) cannot release a request.
ALTER TABLE "approvals" ADD COLUMN "seal" TEXT;
