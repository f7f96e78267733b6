-- Proxy workers LISTEN on "bulkhead_policy" and reload their policy snapshot when anything it is
-- built from changes. Statement-level triggers send one notification per statement; Postgres
-- delivers it at commit (and folds duplicates within a transaction), so workers never see
-- uncommitted state.
CREATE FUNCTION "bulkhead_notify_policy"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('bulkhead_policy', TG_TABLE_NAME);
  RETURN NULL;
END;
$$;

CREATE TRIGGER "tasks_notify_policy" AFTER INSERT OR UPDATE OR DELETE ON "tasks"
  FOR EACH STATEMENT EXECUTE FUNCTION "bulkhead_notify_policy"();

CREATE TRIGGER "agents_notify_policy" AFTER INSERT OR UPDATE OR DELETE ON "agents"
  FOR EACH STATEMENT EXECUTE FUNCTION "bulkhead_notify_policy"();

CREATE TRIGGER "issued_tokens_notify_policy" AFTER INSERT OR UPDATE OR DELETE ON "issued_tokens"
  FOR EACH STATEMENT EXECUTE FUNCTION "bulkhead_notify_policy"();
