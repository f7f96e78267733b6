-- Workers apply a change to one task, agent, token or credential without reloading everything:
-- the notification on "bulkhead_policy" now says which row changed, as "<table>:<key>" (a task's
-- or agent's id, a token's jti, a credential's id). The worker re-reads that row (it never trusts
-- the payload for what the row says). Tables whose changes are rare and affect everything
-- (services, settings, sandboxes, signing keys, CAs) keep their statement-level payload, the
-- table name, which means "reload everything". Postgres delivers at commit and folds duplicate
-- payloads within a transaction; a statement touching many rows sends many payloads, which a
-- worker folds into one full reload beyond a limit.
CREATE FUNCTION "bulkhead_notify_policy_row"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  row_key text;
BEGIN
  IF TG_OP = 'DELETE' THEN
    row_key := to_jsonb(OLD) ->> TG_ARGV[0];
  ELSE
    row_key := to_jsonb(NEW) ->> TG_ARGV[0];
  END IF;
  PERFORM pg_notify('bulkhead_policy', TG_TABLE_NAME || ':' || row_key);
  RETURN NULL;
END;
$$;

DROP TRIGGER "tasks_notify_policy" ON "tasks";
CREATE TRIGGER "tasks_notify_policy" AFTER INSERT OR UPDATE OR DELETE ON "tasks"
  FOR EACH ROW EXECUTE FUNCTION "bulkhead_notify_policy_row"('id');

DROP TRIGGER "agents_notify_policy" ON "agents";
CREATE TRIGGER "agents_notify_policy" AFTER INSERT OR UPDATE OR DELETE ON "agents"
  FOR EACH ROW EXECUTE FUNCTION "bulkhead_notify_policy_row"('id');

DROP TRIGGER "issued_tokens_notify_policy" ON "issued_tokens";
CREATE TRIGGER "issued_tokens_notify_policy" AFTER INSERT OR UPDATE OR DELETE ON "issued_tokens"
  FOR EACH ROW EXECUTE FUNCTION "bulkhead_notify_policy_row"('jti');

-- Binding a credential (service_id, environments) changes what is injected where: it notifies too
-- (last_used_at, written as credentials are used, still does not).
DROP TRIGGER "credentials_notify_policy" ON "credentials";
CREATE TRIGGER "credentials_notify_policy" AFTER INSERT OR DELETE OR UPDATE OF "name", "scheme", "host", "port", "service_id", "environments", "header_template", "secret_sealed" ON "credentials"
  FOR EACH ROW EXECUTE FUNCTION "bulkhead_notify_policy_row"('id');
