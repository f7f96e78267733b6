-- A kill switch stays pulled (docs/database.md). Nothing in Bulkhead makes an ended, expired or
-- revoked task active again, and the worker's token check follows the task's status: the
-- worker's role (its grant on status is for recording expiry) or the dashboard's could write
-- status = 'active' on a revoked task, and every worker took it back at once. Now those states
-- are final for every role, and a role that cannot create tasks (the worker's) may only mark an
-- active task expired: ending and revoking are people's decisions, recorded by the dashboard.
CREATE FUNCTION "task_status_transition"() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
  IF OLD.status <> 'active' THEN
    RAISE EXCEPTION 'a task that is % stays so (not %)', OLD.status, NEW.status
      USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.status <> 'expired' AND NOT has_table_privilege(TG_RELID, 'INSERT') THEN
    RAISE EXCEPTION 'this role may only mark a task expired, not %', NEW.status
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END;
$$;

CREATE TRIGGER "tasks_status_transition" BEFORE UPDATE ON "tasks"
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION "task_status_transition"();
