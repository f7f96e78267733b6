-- The task and sandbox lists are read a page at a time, newest first (lib/db/list-page.ts): each
-- page continues after the previous page's last (created_at, id), which these indexes find
-- without sorting the whole table.
CREATE INDEX "tasks_created_at_id_idx" ON "tasks"("created_at", "id");

CREATE INDEX "sandboxes_created_at_id_idx" ON "sandboxes"("created_at", "id");
