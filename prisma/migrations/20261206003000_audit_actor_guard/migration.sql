-- Whose words a role may put in the audit (docs/database.md). The worker records what agents did
-- and what Bulkhead itself did (actor_type 'agent' or 'system'); people and their API keys act
-- through the dashboard. The worker's role could insert any event, so whoever held its database
-- URL could write "alice approved the deletion" into the chain, hash-linked like any other event.
-- An event whose actor is a person or an API key now needs a role that manages sign-ins (INSERT
-- on sessions: the dashboard's, or the owner).
--
-- The WHEN clause keeps the proxy's hot path (agent and system events, in batches) free of any
-- function call; the check runs for the dashboard's own events only, once per row.
CREATE FUNCTION "audit_events_actor_guard"() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
  IF NOT has_table_privilege('public.sessions', 'INSERT') THEN
    RAISE EXCEPTION 'this role records agents and the system only, not what a % did (%)', NEW.actor_type, NEW.type
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END;
$$;

CREATE TRIGGER "audit_events_actor_guard" BEFORE INSERT ON "audit_events"
  FOR EACH ROW WHEN (NEW.actor_type IN ('user', 'api_key')) EXECUTE FUNCTION "audit_events_actor_guard"();
