-- An approval's status moves one way, and only a decider decides (docs/approvals.md, "Who may
-- move an approval").
--
--   pending  -> approved | denied          only a role that may record who decided (UPDATE on
--                                          decided_by_id: the dashboard's, or the owner)
--   pending  -> expired | cancelled        anyone who may update the status
--   approved -> consumed | expired | cancelled
--   consumed, denied, expired, cancelled   final
--
-- The worker's role updates `status` to consume, expire and cancel; its column grant alone let
-- anyone holding that role approve a held request (the worker then forwarded it, with no
-- approval.approved in the audit), and any role could bring a used, denied, expired or cancelled
-- approval back to approved (a 202 grant spent twice, a kill switch undone). Likewise an
-- approval is inserted pending and undecided, except by a decider (the owner's fixtures).
CREATE FUNCTION "approval_status_transition"() RETURNS trigger LANGUAGE plpgsql
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

CREATE TRIGGER "approvals_status_transition" BEFORE INSERT OR UPDATE ON "approvals"
  FOR EACH ROW EXECUTE FUNCTION "approval_status_transition"();
