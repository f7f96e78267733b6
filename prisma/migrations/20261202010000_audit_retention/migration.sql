-- Audit retention (docs/audit.md, "Retention"): events older than the configured period may be
-- archived and then removed, only as whole checkpointed segments, by the owner role alone.
--
-- audit_retention holds one marker per removal: events before first_kept_seq are gone, the event
-- at first_kept_seq links to anchor_hash, which is the hash signed by the kept checkpoint
-- (checkpoint_number, at seq first_kept_seq - 1). The verifier starts from the newest marker;
-- events missing without one are still tampering. Markers are evidence: append-only.
CREATE TABLE "audit_retention" (
    "id" BIGSERIAL NOT NULL,
    "removed_from_seq" BIGINT NOT NULL,
    "first_kept_seq" BIGINT NOT NULL,
    "anchor_hash" TEXT NOT NULL,
    "checkpoint_number" BIGINT NOT NULL,
    "events_removed" BIGINT NOT NULL,
    "archive_file" TEXT NOT NULL,
    "archive_sha256" TEXT NOT NULL,
    "performed_by" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "audit_retention_pkey" PRIMARY KEY ("id")
);

CREATE UNIQUE INDEX "audit_retention_first_kept_seq_key" ON "audit_retention"("first_kept_seq");

CREATE FUNCTION "audit_retention_append_only"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_retention is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER "audit_retention_no_update_delete" BEFORE UPDATE OR DELETE ON "audit_retention"
  FOR EACH ROW EXECUTE FUNCTION "audit_retention_append_only"();

CREATE TRIGGER "audit_retention_no_truncate" BEFORE TRUNCATE ON "audit_retention"
  FOR EACH STATEMENT EXECUTE FUNCTION "audit_retention_append_only"();

-- The append-only trigger now lets exactly one kind of DELETE through: a row delete by the role
-- that owns audit_events, inside a transaction that audit_apply_retention marked (the setting
-- holds that transaction's id). Runtime roles hold no DELETE privilege at all, so they never
-- reach this trigger, and a setting they could forge is useless without being the owner.
-- UPDATE and TRUNCATE stay refused for everyone.
CREATE OR REPLACE FUNCTION "audit_events_append_only"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND TG_LEVEL = 'ROW'
     AND current_setting('bulkhead.audit_retention', true) = txid_current()::text
     AND current_user::text = (SELECT pg_get_userbyid(c.relowner)::text FROM pg_class c WHERE c.oid = TG_RELID) THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END;
$$;

-- Removes the segment from the current start of the log through p_through_seq, which must be the
-- seq of chained checkpoint p_checkpoint_number with the hash stored there, and records the
-- marker, in the caller's transaction. Not SECURITY DEFINER: it runs with the caller's rights, so
-- only the owner can make it delete anything; EXECUTE is revoked from PUBLIC and granted to no
-- runtime role (lib/db/roles/privileges.ts).
CREATE FUNCTION "audit_apply_retention"(
  p_through_seq BIGINT, p_checkpoint_number BIGINT, p_archive_file TEXT, p_archive_sha256 TEXT, p_performed_by TEXT
) RETURNS BIGINT LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
  cp record;
  first_seq BIGINT;
  removed BIGINT;
BEGIN
  -- One removal at a time.
  LOCK TABLE "audit_retention" IN SHARE ROW EXCLUSIVE MODE;
  SELECT seq, hash INTO cp FROM "audit_checkpoints" WHERE "number" = p_checkpoint_number;
  IF NOT FOUND OR cp.seq <> p_through_seq THEN
    RAISE EXCEPTION 'audit retention: checkpoint % is not at seq %', p_checkpoint_number, p_through_seq;
  END IF;
  SELECT COALESCE(max(first_kept_seq), 1) INTO first_seq FROM "audit_retention";
  IF p_through_seq < first_seq THEN
    RAISE EXCEPTION 'audit retention: events through seq % are already removed', p_through_seq;
  END IF;
  IF (SELECT hash FROM "audit_events" WHERE seq = p_through_seq) IS DISTINCT FROM cp.hash THEN
    RAISE EXCEPTION 'audit retention: the event at seq % does not have the hash checkpoint % signed', p_through_seq, p_checkpoint_number;
  END IF;
  IF p_archive_sha256 !~ '^[0-9a-f]{64}$' OR p_archive_file = '' THEN
    RAISE EXCEPTION 'audit retention: an archive file name and its sha256 are required';
  END IF;
  PERFORM set_config('bulkhead.audit_retention', txid_current()::text, true);
  DELETE FROM "audit_events" WHERE seq >= first_seq AND seq <= p_through_seq;
  GET DIAGNOSTICS removed = ROW_COUNT;
  PERFORM set_config('bulkhead.audit_retention', '', true);
  IF removed <> p_through_seq - first_seq + 1 THEN
    RAISE EXCEPTION 'audit retention: seq % to % should be % events but % were found: the chain has a gap', first_seq, p_through_seq, p_through_seq - first_seq + 1, removed;
  END IF;
  INSERT INTO "audit_retention" (removed_from_seq, first_kept_seq, anchor_hash, checkpoint_number, events_removed, archive_file, archive_sha256, performed_by)
  VALUES (first_seq, p_through_seq + 1, cp.hash, p_checkpoint_number, removed, p_archive_file, p_archive_sha256, p_performed_by);
  RETURN removed;
END;
$$;

REVOKE EXECUTE ON FUNCTION "audit_apply_retention"(BIGINT, BIGINT, TEXT, TEXT, TEXT) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION "audit_retention_append_only"() FROM PUBLIC;
