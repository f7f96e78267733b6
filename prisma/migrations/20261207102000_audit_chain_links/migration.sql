-- The chain's AFTER statement trigger checks every link the statement stored, from the stored rows
-- (docs/audit.md, "The chain").
--
-- The row trigger takes each row's prev_hash from the transaction-local setting
-- bulkhead.chain_hash, which the statement trigger sets and each row trigger moves on
-- (20261202020000_audit_insert_cost). Any role may set any custom setting, at any time, also from
-- inside the INSERT: a row's value expressions, a sub-query in its SELECT or WHERE, and RETURNING
-- are evaluated after the statement trigger and between the row triggers. A runtime role could so
-- store a row linked to 64 zeros or to an older event:
--   INSERT INTO audit_events (type, actor_type, actor_id, data) VALUES ('proxy.decision', 'system',
--     'proxy-worker', jsonb_build_object('x', set_config('bulkhead.chain_hash', repeat('0', 64), true)))
-- and verification then named the innocent event before it as edited (and only that first break).
-- The AFTER trigger compared only the number of rows and the newest row's hash with the same
-- settings, which the client can also rewrite (in RETURNING) before it runs.
--
-- Now the AFTER trigger trusts no setting. Under the head's lock it reads every row past the head,
-- up to the table's largest seq, in seq order (the unique index on seq, one range read of the rows
-- the statement just wrote, the read the count already made), and refuses the statement, keeping
-- nothing of it, unless
--   * those rows are exactly head + 1 .. the largest seq (none missing, none planted past the end);
--   * each one's prev_hash is the hash of the row before it (the head's hash for the first).
-- The head then moves to the largest seq and that row's hash. The row trigger keeps reading the
-- settings (a lookup of the previous row per row is what 20261202020000 removed); a setting changed
-- behind it now makes the statement fail instead of storing a broken link. The canonical text and
-- the hash are unchanged (chain version 1); rows already stored are not touched.
--
-- The settings are still read here, only to word a refusal (a row past the end the row trigger
-- reached, against rows that were chained but not stored); they decide nothing.
-- CREATE OR REPLACE restates SECURITY DEFINER and the pinned search_path (20261201001000) and
-- keeps the function's owner and grants.

CREATE OR REPLACE FUNCTION "audit_events_chain_advance"() RETURNS trigger LANGUAGE plpgsql
  SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
  AS $$
DECLARE
  head_seq bigint;
  head_hash text;
  newest_seq bigint;
  newest_hash text;
  stored bigint;
  bad_seq bigint;
  said_seq text := current_setting('bulkhead.chain_seq', true);
BEGIN
  SELECT seq, hash INTO head_seq, head_hash FROM "audit_chain_head" WHERE id = 1;
  SELECT max(seq) INTO newest_seq FROM "audit_events";
  IF newest_seq IS NULL OR newest_seq <= head_seq THEN
    RETURN NULL;
  END IF;
  SELECT hash INTO newest_hash FROM "audit_events" WHERE seq = newest_seq;
  SELECT count(*), min(seq) FILTER (WHERE prev_hash IS DISTINCT FROM before_hash)
    INTO stored, bad_seq
    FROM (SELECT seq, prev_hash, lag(hash, 1, head_hash) OVER (ORDER BY seq) AS before_hash
            FROM "audit_events" WHERE seq > head_seq AND seq <= newest_seq) r;
  IF stored <> newest_seq - head_seq THEN
    IF said_seq ~ '^[0-9]{1,18}$' AND said_seq::bigint > head_seq AND said_seq::bigint < newest_seq THEN
      RAISE EXCEPTION 'audit_events: a row with seq % lies past the chain''s end % (seq was set outside the chain trigger?); nothing of this statement is kept',
        newest_seq, said_seq
        USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RAISE EXCEPTION 'audit_events: % rows were chained after seq % but % are stored: a row was skipped after it was chained (INSERT ... ON CONFLICT?), or the chain''s settings were changed during the statement; nothing of this statement is kept',
      newest_seq - head_seq, head_seq, stored
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  IF bad_seq IS NOT NULL THEN
    RAISE EXCEPTION 'audit_events: the row with seq % does not link to the hash of seq % (bulkhead.chain_hash was changed during the statement?); nothing of this statement is kept',
      bad_seq, bad_seq - 1
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  UPDATE "audit_chain_head" SET seq = newest_seq, hash = newest_hash, updated_at = now() WHERE id = 1;
  RETURN NULL;
END;
$$;
