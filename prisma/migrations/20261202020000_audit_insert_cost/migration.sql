-- What PostgreSQL spends on each audit row (docs/audit.md, "What an insert costs"). The shipper's
-- batches are bounded by the database's CPU per row, not by the round trips: at 1,000-row
-- batches the row trigger, the two generated columns and the eight indexes are the whole cost.
-- This migration changes how three of those are computed, not what they compute:
--
-- 1. audit_event_search_text and audit_event_facets were SQL functions with sub-queries, so
--    PostgreSQL could not inline them and ran each as a small query of its own for every row
--    (executor start, a set-returning function materialised, an aggregate, executor end). They
--    are now PL/pgSQL loops over the same fields, which evaluate as plain expressions. They
--    return the same value for every input (tests/integration/audit/insert-cost.test.ts compares
--    them with the definitions of 20261201010000_audit_search on generated and hostile data), so
--    the values already stored stay right and nothing is recomputed.
--
-- 2. The chain's row trigger looked up the newest chained row with a query per row. Now the
--    statement trigger does that once, under the head's lock, and hands the chain's end from row
--    to row in two transaction-local settings (bulkhead.chain_seq, bulkhead.chain_hash). The
--    statement trigger sets them before the first row of every statement, so nothing a client set
--    beforehand is used. The AFTER statement trigger then checks that every seq the row trigger
--    handed out is a stored row and that the newest one carries the hash handed on, before it
--    moves the head: a row that the row trigger chained but that was never stored (INSERT ... ON
--    CONFLICT DO NOTHING skipping it, possible only for the owner, who alone may name id) makes
--    the statement fail with nothing of it stored, instead of leaving a link to a row that does
--    not exist. The canonical text and the hash are unchanged (chain version 1).
--
-- Both statement triggers keep SECURITY DEFINER and their pinned search_path (20261201001000);
-- CREATE OR REPLACE keeps their owner and grants.

CREATE OR REPLACE FUNCTION "audit_event_search_text"(reason text, data jsonb) RETURNS text
  LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
  AS $$
DECLARE
  top text;
  actions jsonb;
  a jsonb;
  n integer;
  i integer := 0;
  kept integer := 0;
  parts text[];
BEGIN
  IF jsonb_typeof(data) = 'object' THEN
    top := concat_ws(' ', left(data->>'method', 64), left(data->>'url', 4096), left(data->>'service', 256), left(data->>'code', 256));
    actions := data->'actions';
    IF jsonb_typeof(actions) = 'array' THEN
      n := jsonb_array_length(actions);
      -- The first 100 elements that are objects, in order, as audit_event_actions gave them (the
      -- same loop as in audit_event_facets below: inline in both, a shared function would be a
      -- call per row more).
      WHILE i < n AND kept < 100 LOOP
        a := actions->i;
        i := i + 1;
        IF jsonb_typeof(a) = 'object' THEN
          kept := kept + 1;
          parts[kept] := concat_ws(' ', left(a->>'service', 256), left(a->>'environment', 256),
                                   left(a->>'resource', 1024), left(a->>'operation', 512));
        END IF;
      END LOOP;
    END IF;
  END IF;
  -- array_to_string of no actions is NULL, as string_agg over no rows was: concat_ws skips it.
  RETURN lower(left(concat_ws(' ', left(reason, 4096), top, array_to_string(parts, ' ')), 16384));
END;
$$;

CREATE OR REPLACE FUNCTION "audit_event_facets"(type text, outcome text, effect text, actor_type text, actor_id text, data jsonb) RETURNS text[]
  LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
  AS $$
DECLARE
  candidates text[];
  m integer := 4;
  actions jsonb;
  a jsonb;
  n integer;
  i integer := 0;
  kept integer := 0;
  f text;
  sorted text[] := '{}';
  size integer := 0;
  k integer;
  j integer;
BEGIN
  candidates := ARRAY['type:' || type, 'kind:' || split_part(type, '.', 1), 'outcome:' || outcome, 'effect:' || effect];
  IF actor_type <> 'agent' THEN
    m := m + 1;
    candidates[m] := 'actor:' || actor_type || ':' || actor_id;
  END IF;
  IF jsonb_typeof(data) = 'object' THEN
    m := m + 1;
    candidates[m] := 'service:' || (data->>'service');
    actions := data->'actions';
    IF jsonb_typeof(actions) = 'array' THEN
      n := jsonb_array_length(actions);
      WHILE i < n AND kept < 100 LOOP
        a := actions->i;
        i := i + 1;
        IF jsonb_typeof(a) = 'object' THEN
          kept := kept + 1;
          m := m + 1;
          candidates[m] := 'service:' || (a->>'service');
          m := m + 1;
          candidates[m] := 'environment:' || (a->>'environment');
        END IF;
      END LOOP;
    END IF;
  END IF;
  -- Many actions: let the executor sort (an insertion sort in PL/pgSQL is quadratic).
  IF m > 24 THEN
    RETURN (SELECT coalesce(array_agg(DISTINCT x ORDER BY x), '{}') FROM unnest(candidates) AS x
             WHERE x IS NOT NULL AND octet_length(x) <= 300);
  END IF;
  -- Few (the usual case): sorted and without duplicates by insertion, as array_agg(DISTINCT f
  -- ORDER BY f) gave them (same collation: the arguments').
  FOR p IN 1..m LOOP
    f := candidates[p];
    CONTINUE WHEN f IS NULL OR octet_length(f) > 300;
    k := 1;
    WHILE k <= size AND sorted[k] < f LOOP
      k := k + 1;
    END LOOP;
    CONTINUE WHEN k <= size AND sorted[k] = f;
    j := size;
    WHILE j >= k LOOP
      sorted[j + 1] := sorted[j];
      j := j - 1;
    END LOOP;
    sorted[k] := f;
    size := size + 1;
  END LOOP;
  RETURN sorted;
END;
$$;

CREATE OR REPLACE FUNCTION "audit_events_chain_lock"() RETURNS trigger LANGUAGE plpgsql
  SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
  AS $$
DECLARE
  end_seq bigint;
  end_hash text;
BEGIN
  PERFORM 1 FROM "audit_chain_head" WHERE id = 1 FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'audit_chain_head has no row; the audit chain cannot continue'
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  -- The chain's end: the head, or a row past it that this transaction inserted in a statement
  -- whose AFTER trigger has not run yet (a statement inside another one).
  SELECT coalesce(e.seq, h.seq), coalesce(e.hash, h.hash) INTO end_seq, end_hash
    FROM "audit_chain_head" h
    LEFT JOIN LATERAL (
      SELECT a.seq, a.hash FROM "audit_events" a WHERE a.seq > h.seq ORDER BY a.seq DESC LIMIT 1
    ) e ON true
    WHERE h.id = 1;
  PERFORM set_config('bulkhead.chain_seq', end_seq::text, true),
          set_config('bulkhead.chain_hash', end_hash, true);
  RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION "audit_events_chain"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  end_seq text := current_setting('bulkhead.chain_seq', true);
BEGIN
  -- Set by audit_events_chain_lock for every statement; missing only if that trigger was switched off.
  IF end_seq IS NULL OR end_seq = '' THEN
    RAISE EXCEPTION 'audit_events: the chain''s end was not set for this statement (is the trigger audit_events_chain_lock enabled?); nothing is inserted'
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  NEW.seq := end_seq::bigint + 1;
  NEW.prev_hash := current_setting('bulkhead.chain_hash');
  NEW.hash := audit_event_hash(NEW.seq, NEW.prev_hash, NEW.at, NEW.type, NEW.actor_type, NEW.actor_id,
                               NEW.agent_id, NEW.task_id, NEW.outcome, NEW.effect, NEW.reason, NEW.rule_id, NEW.data);
  PERFORM set_config('bulkhead.chain_seq', NEW.seq::text, true),
          set_config('bulkhead.chain_hash', NEW.hash, true);
  RETURN NEW;
END;
$$;

CREATE OR REPLACE FUNCTION "audit_events_chain_advance"() RETURNS trigger LANGUAGE plpgsql
  SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
  AS $$
DECLARE
  head_seq bigint;
  end_seq bigint := current_setting('bulkhead.chain_seq', true)::bigint;
  end_hash text := current_setting('bulkhead.chain_hash', true);
  stored bigint;
  newest_hash text;
BEGIN
  SELECT seq INTO head_seq FROM "audit_chain_head" WHERE id = 1;
  IF end_seq IS NULL OR end_seq <= head_seq THEN
    RETURN NULL;
  END IF;
  SELECT count(*) INTO stored FROM "audit_events" WHERE seq > head_seq;
  SELECT hash INTO newest_hash FROM "audit_events" WHERE seq = end_seq;
  IF stored <> end_seq - head_seq OR newest_hash IS DISTINCT FROM end_hash THEN
    RAISE EXCEPTION 'audit_events: % rows were chained after seq % but % are stored: a row was skipped after it was chained (INSERT ... ON CONFLICT?); nothing of this statement is kept',
      end_seq - head_seq, head_seq, stored
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  UPDATE "audit_chain_head" SET seq = end_seq, hash = end_hash, updated_at = now() WHERE id = 1;
  RETURN NULL;
END;
$$;
