-- The environment inventory is one YAML document in "settings" (key inventory.yaml).
-- DropTable
DROP TABLE "inventory_entries";

-- Everything a worker's snapshot is built from notifies "bulkhead_policy" at commit.
CREATE TRIGGER "services_notify_policy" AFTER INSERT OR UPDATE OR DELETE ON "services"
  FOR EACH STATEMENT EXECUTE FUNCTION "bulkhead_notify_policy"();

CREATE TRIGGER "settings_notify_policy" AFTER INSERT OR UPDATE OR DELETE ON "settings"
  FOR EACH STATEMENT EXECUTE FUNCTION "bulkhead_notify_policy"();

CREATE TRIGGER "sandboxes_notify_policy" AFTER INSERT OR UPDATE OR DELETE ON "sandboxes"
  FOR EACH STATEMENT EXECUTE FUNCTION "bulkhead_notify_policy"();

CREATE TRIGGER "credentials_notify_policy" AFTER INSERT OR UPDATE OR DELETE ON "credentials"
  FOR EACH STATEMENT EXECUTE FUNCTION "bulkhead_notify_policy"();

CREATE TRIGGER "signing_keys_notify_policy" AFTER INSERT OR UPDATE OR DELETE ON "signing_keys"
  FOR EACH STATEMENT EXECUTE FUNCTION "bulkhead_notify_policy"();

-- A decided approval wakes the worker holding that request: the payload is the approval id.
CREATE FUNCTION "bulkhead_notify_approval"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status IS DISTINCT FROM OLD.status THEN
    PERFORM pg_notify('bulkhead_approvals', NEW.id::text);
  END IF;
  RETURN NULL;
END;
$$;

CREATE TRIGGER "approvals_notify" AFTER UPDATE ON "approvals"
  FOR EACH ROW EXECUTE FUNCTION "bulkhead_notify_approval"();
