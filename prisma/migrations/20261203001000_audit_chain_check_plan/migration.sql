-- The chain's AFTER statement trigger checks, once per insert statement, that every seq the row
-- trigger handed out is a stored row (20261202020000_audit_insert_cost). It counted the rows past
-- the head with `WHERE seq > head_seq`: an open range, whose plan depends on the table's
-- statistics. Without them (a new installation before autovacuum's first ANALYZE, a restored
-- database, autovacuum switched off) PostgreSQL assumes a third of the table matches and scans
-- all of it, so every batch the shipper inserted read the whole audit table: 74 ms for 200,000
-- rows, ~200 µs more per row in 1,000-row batches (docs/benchmarks.md, 2026-12-03).
--
-- The same check, with plans that do not depend on statistics:
--   * the count is over the closed range (head_seq, end_seq], which PostgreSQL estimates as a
--     small slice of the table and reads through the unique index on seq;
--   * max(seq) is read from the end of that index, so a row past the chain's end still fails the
--     statement (the open range counted such a row; it cannot be inserted while the head is
--     locked, and the check says so if it ever is);
--   * the newest row's hash is looked up by seq, as before.
-- The check is stricter than before, never weaker: a statement passes only if the rows in
-- (head_seq, end_seq] are exactly the ones handed out, none lies past end_seq, and the row at
-- end_seq carries the hash handed on. The messages are unchanged for the cases that had them.
-- CREATE OR REPLACE restates SECURITY DEFINER and the pinned search_path (20261201001000) and
-- keeps the function's owner and grants.

CREATE OR REPLACE FUNCTION "audit_events_chain_advance"() RETURNS trigger LANGUAGE plpgsql
  SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
  AS $$
DECLARE
  head_seq bigint;
  end_seq bigint := current_setting('bulkhead.chain_seq', true)::bigint;
  end_hash text := current_setting('bulkhead.chain_hash', true);
  stored bigint;
  newest_seq bigint;
  newest_hash text;
BEGIN
  SELECT seq INTO head_seq FROM "audit_chain_head" WHERE id = 1;
  IF end_seq IS NULL OR end_seq <= head_seq THEN
    RETURN NULL;
  END IF;
  SELECT count(*) INTO stored FROM "audit_events" WHERE seq > head_seq AND seq <= end_seq;
  SELECT max(seq) INTO newest_seq FROM "audit_events";
  SELECT hash INTO newest_hash FROM "audit_events" WHERE seq = end_seq;
  IF stored <> end_seq - head_seq OR newest_hash IS DISTINCT FROM end_hash THEN
    RAISE EXCEPTION 'audit_events: % rows were chained after seq % but % are stored: a row was skipped after it was chained (INSERT ... ON CONFLICT?); nothing of this statement is kept',
      end_seq - head_seq, head_seq, stored
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  IF newest_seq IS DISTINCT FROM end_seq THEN
    RAISE EXCEPTION 'audit_events: a row with seq % lies past the chain''s end % (seq was set outside the chain trigger?); nothing of this statement is kept',
      newest_seq, end_seq
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  UPDATE "audit_chain_head" SET seq = end_seq, hash = end_hash, updated_at = now() WHERE id = 1;
  RETURN NULL;
END;
$$;
