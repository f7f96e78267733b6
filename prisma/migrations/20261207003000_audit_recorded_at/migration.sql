-- When the database stored each audit event, in its own clock (docs/audit.md, "Two times").
-- `at` is the writer's word: the worker logs an event before it forwards the request and ships it
-- later, so its `at` is rightly older than the insert, and a runtime role (whoever holds the
-- worker's or the dashboard's database URL) could insert an event dated last week that then
-- sorted and filtered among last week's. `recorded_at` is filled by the column's default only:
-- the runtime roles' INSERT privilege names the columns a writer supplies, and this is not one of
-- them (lib/db/roles/privileges.ts), so no runtime role can choose it, and a backdated `at` shows
-- beside the time it was really stored.
--
-- Added without a default first, so that the events already stored read NULL ("stored before the
-- database kept this time") rather than the time of this migration; the default applies from now on.
ALTER TABLE "audit_events" ADD COLUMN "recorded_at" TIMESTAMPTZ(3);
ALTER TABLE "audit_events" ALTER COLUMN "recorded_at" SET DEFAULT statement_timestamp();
