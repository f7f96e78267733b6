-- What the worker's database role may write, narrowed to what the worker does (docs/database.md,
-- "What each role may write"). Whoever holds only the worker's database URL (not its key) could:
--   * plant an interception CA whose private key they chose, sealed to the worker's public key,
--     and have every worker use it at once (and retire healthy CAs), with no audit event;
--   * record events as a person or an API key by spelling the actor type differently ('User',
--     'user ', 'Api_Key' passed the actor guard, which matched exactly), or as the operator's CLI
--     ('system' / 'cli');
--   * mark an active task expired an hour early, or write ended_at / ended_reason on an active
--     task, and write cancel_reason or consumed_at on a pending approval without changing it.
-- "The worker's role" below is any role that may not create sign-in sessions (the test the audit
-- actor guard already uses): the dashboard's role and the owner keep what they had.

-- 1. Actor types are the four Bulkhead writes, spelled exactly (new rows; old ones are kept).
ALTER TABLE "audit_events" ADD CONSTRAINT "audit_events_actor_type_known"
  CHECK ("actor_type" IN ('agent', 'system', 'user', 'api_key')) NOT VALID;

-- 2. The worker records the system under its own names only: `proxy-worker`, `worker:<id>`,
-- `expiry` (tasks reaching their end), `start-up` (the CA it creates when none is usable),
-- `chain-watchdog` (lib/audit/chain-watchdog.ts, run by the launcher with each role), or no
-- id. Checked only for other system ids (the proxy's hot path, agents' events and the worker's own,
-- calls no function). check_violation: the shipper then stores such an event in minimal form or
-- keeps it aside, instead of retrying its batch forever.
CREATE FUNCTION "audit_events_system_actor_guard"() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
  IF NOT has_table_privilege('public.sessions', 'INSERT') THEN
    RAISE EXCEPTION 'this role records the system only as the proxy worker, not as %', NEW.actor_id
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END;
$$;

CREATE TRIGGER "audit_events_system_actor_guard" BEFORE INSERT ON "audit_events"
  FOR EACH ROW WHEN (NEW.actor_type = 'system' AND NEW.actor_id IS NOT NULL
                     AND NEW.actor_id NOT IN ('proxy-worker', 'expiry', 'start-up', 'chain-watchdog')
                     AND NEW.actor_id NOT LIKE 'worker:%')
  EXECUTE FUNCTION "audit_events_system_actor_guard"();

-- 3. Tasks: the worker marks an active task expired once its time is up (five seconds of clock
-- difference allowed), and changes nothing else.
CREATE OR REPLACE FUNCTION "task_status_transition"() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
  IF OLD.status <> 'active' THEN
    RAISE EXCEPTION 'a task that is % stays so (not %)', OLD.status, NEW.status
      USING ERRCODE = 'check_violation';
  END IF;
  IF NOT has_table_privilege(TG_RELID, 'INSERT') THEN
    IF NEW.status <> 'expired' THEN
      RAISE EXCEPTION 'this role may only mark a task expired, not %', NEW.status
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.expires_at > clock_timestamp() + interval '5 seconds' THEN
      RAISE EXCEPTION 'this role may mark a task expired only once its time is up (it ends at %)', OLD.expires_at
        USING ERRCODE = 'insufficient_privilege';
    END IF;
  END IF;
  RETURN NEW;
END;
$$;

CREATE FUNCTION "task_update_guard"() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
  IF NOT has_table_privilege(TG_RELID, 'INSERT') THEN
    RAISE EXCEPTION 'this role may change a task only by marking it expired'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END;
$$;

CREATE TRIGGER "tasks_update_guard" BEFORE UPDATE ON "tasks"
  FOR EACH ROW WHEN (OLD.status IS NOT DISTINCT FROM NEW.status
                     AND (OLD.ended_at IS DISTINCT FROM NEW.ended_at OR OLD.ended_reason IS DISTINCT FROM NEW.ended_reason))
  EXECUTE FUNCTION "task_update_guard"();

-- 4. Approvals: a role that does not decide writes consumed_at, cancelled_at and cancel_reason
-- only with the status change they describe.
CREATE OR REPLACE FUNCTION "approval_status_transition"() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
  decider boolean := has_column_privilege(TG_RELID, 'decided_by_id', 'UPDATE');
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NOT decider AND (NEW.status <> 'pending' OR NEW.decided_by_id IS NOT NULL OR NEW.decided_at IS NOT NULL
                        OR NEW.consumed_at IS NOT NULL OR NEW.cancelled_at IS NOT NULL) THEN
      RAISE EXCEPTION 'an approval is created pending and undecided (status %)', NEW.status
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
  END IF;
  IF NOT decider AND (
       (OLD.consumed_at IS DISTINCT FROM NEW.consumed_at AND NOT (OLD.status = 'approved' AND NEW.status = 'consumed'))
    OR ((OLD.cancelled_at IS DISTINCT FROM NEW.cancelled_at OR OLD.cancel_reason IS DISTINCT FROM NEW.cancel_reason)
        AND NOT (OLD.status IN ('pending', 'approved') AND NEW.status = 'cancelled'))) THEN
    RAISE EXCEPTION 'this role writes when an approval was used or cancelled only with that change (status % to %)', OLD.status, NEW.status
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NEW.status = OLD.status THEN
    RETURN NEW;
  END IF;
  IF NOT ((OLD.status = 'pending' AND NEW.status IN ('approved', 'denied', 'expired', 'cancelled'))
          OR (OLD.status = 'approved' AND NEW.status IN ('consumed', 'expired', 'cancelled'))) THEN
    RAISE EXCEPTION 'an approval cannot go from % to %', OLD.status, NEW.status
      USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.status IN ('approved', 'denied') AND NOT decider THEN
    RAISE EXCEPTION 'only a role that records who decided may % an approval', CASE NEW.status WHEN 'approved' THEN 'approve' ELSE 'deny' END
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END;
$$;

-- 5. Interception CAs. A retired CA stays retired (every role). The worker creates a CA only when
-- none is usable for thirty more days (what ensureCertificateAuthority does), dated by the
-- database, and retires only CAs within thirty days of their end. A CA either runtime role creates
-- (the dashboard's as well: its role could plant one the same way, sealed to the worker's public
-- key it holds) must be recorded as ca.created or ca.rotated in the same transaction, as
-- Bulkhead's own paths do: a CA nobody can see in the audit is refused at commit. The owner
-- (migrations, fixtures) is not held to it.
CREATE FUNCTION "certificate_authority_guard"() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
  worker boolean := NOT has_table_privilege('public.sessions', 'INSERT');
BEGIN
  IF TG_OP = 'UPDATE' THEN
    IF OLD.retired_at IS NOT NULL AND NEW.retired_at IS DISTINCT FROM OLD.retired_at THEN
      RAISE EXCEPTION 'a retired interception CA stays retired'
        USING ERRCODE = 'check_violation';
    END IF;
    IF worker AND OLD.retired_at IS NULL AND NEW.retired_at IS NOT NULL AND OLD.not_after >= clock_timestamp() + interval '30 days' THEN
      RAISE EXCEPTION 'this role retires an interception CA only within thirty days of its end (it ends at %)', OLD.not_after
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
  END IF;
  IF worker THEN
    IF EXISTS (SELECT 1 FROM certificate_authorities c
                WHERE c.retired_at IS NULL AND c.not_after >= clock_timestamp() + interval '30 days') THEN
      RAISE EXCEPTION 'this role creates an interception CA only when none is usable'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    NEW.created_at := statement_timestamp();
    NEW.retired_at := NULL;
  END IF;
  RETURN NEW;
END;
$$;

CREATE TRIGGER "certificate_authorities_guard" BEFORE INSERT OR UPDATE ON "certificate_authorities"
  FOR EACH ROW EXECUTE FUNCTION "certificate_authority_guard"();

CREATE FUNCTION "certificate_authority_audited"() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
  IF NOT pg_has_role((SELECT c.relowner FROM pg_class c WHERE c.oid = TG_RELID), 'MEMBER') AND NOT EXISTS (
       SELECT 1 FROM audit_events e
        WHERE e.type IN ('ca.created', 'ca.rotated') AND e.data->>'id' = NEW.id::text) THEN
    RAISE EXCEPTION 'an interception CA a runtime role creates must be recorded in the audit (ca.created or ca.rotated) in the same transaction'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER "certificate_authorities_audited" AFTER INSERT ON "certificate_authorities"
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION "certificate_authority_audited"();
