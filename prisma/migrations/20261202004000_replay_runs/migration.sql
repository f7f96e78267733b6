-- The incident replay's runs (`bulkhead replay`, `npm run replay`): the matrix as played, when,
-- on which commit, and per cell the outcome, who stopped it and the audit events that tell it.
-- Written once by the CLI (the dashboard's role) and read by the Replay page; never updated.
CREATE TABLE "replay_runs" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "started_at" TIMESTAMPTZ(3) NOT NULL,
    "finished_at" TIMESTAMPTZ(3) NOT NULL,
    "commit" TEXT,
    "passed" BOOLEAN NOT NULL,
    "table_markdown" TEXT NOT NULL,
    "cells" JSONB NOT NULL,

    CONSTRAINT "replay_runs_pkey" PRIMARY KEY ("id")
);

CREATE INDEX "replay_runs_finished_at_idx" ON "replay_runs"("finished_at");
