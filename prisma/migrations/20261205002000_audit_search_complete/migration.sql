-- Audit search must find every action of every event (docs/audit.md, "Searching").
--
-- The generated columns search_text and facets (20261201010000_audit_search, rewritten for speed
-- in 20261202020000_audit_insert_cost) index at most 100 actions of an event, 16 KiB of text, and
-- a prefix of each field (reason and URL 4096 characters, resource 1024, operation 512, service,
-- environment and refusal code 256, method 64). One request can carry far more (2,000 SQL
-- actions, many GraphQL fields, batched JSON-RPC), so an agent could pad a request until the
-- action that mattered lay past those caps, and a search for its table, service or environment
-- missed the event.
--
-- The caps stay: they bound what one agent-controlled event costs every insert (trigram and GIN
-- entries). What changes is that an event they cut is marked, and searched in full:
--   * audit_event_search_text returns the same text as before, followed by U+0001 when it left
--     anything of the event out (a field over its cap, more than 100 actions, more than 16 KiB
--     in all; the same caps cut facets). pg_trgm makes no trigram of U+0001. It notices a cut
--     by comparing lengths it has at hand, so an ordinary event costs what it did;
--   * audit_event_search_cut(search_text): the mark (an SQL function PostgreSQL inlines);
--   * audit_events_search_cut_idx: a partial index of the marked events only;
--   * audit_event_search_text_full and audit_event_facets_full: the same text and facets from
--     every action, without any cap, computed only for the marked events a search considers.
-- A free-text search is `search_text LIKE p OR (cut AND full text LIKE p)`, a service or
-- environment filter `facets && v OR (cut AND full facets && v)`: PostgreSQL combines the
-- trigram (or facet) index with the index of cut events, so the few long events are found
-- without computing anything for the others.

CREATE OR REPLACE FUNCTION "audit_event_search_text"(reason text, data jsonb) RETURNS text
  LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
  AS $$
DECLARE
  top text;
  capped text;
  part text;
  actions jsonb;
  a jsonb;
  n integer;
  i integer := 0;
  kept integer := 0;
  parts text[];
  whole text;
  cut boolean := coalesce(length(reason), 0) > 4096;
BEGIN
  IF jsonb_typeof(data) = 'object' THEN
    top := concat_ws(' ', data->>'method', data->>'url', data->>'service', data->>'code');
    -- A field can be over its cap only if the four together are longer than the smallest cap
    -- (the method's, 64), and then, past 256 characters (service and code), any of them.
    IF length(top) > 64 AND (length(top) > 256 OR length(data->>'method') > 64) THEN
      capped := concat_ws(' ', left(data->>'method', 64), left(data->>'url', 4096), left(data->>'service', 256), left(data->>'code', 256));
      IF length(capped) < length(top) THEN
        cut := true;
        top := capped;
      END IF;
    END IF;
    actions := data->'actions';
    IF jsonb_typeof(actions) = 'array' THEN
      n := jsonb_array_length(actions);
      -- The first 100 elements that are objects, in order (the same loop as in audit_event_facets).
      WHILE i < n AND kept < 100 LOOP
        a := actions->i;
        i := i + 1;
        IF jsonb_typeof(a) = 'object' THEN
          kept := kept + 1;
          part := concat_ws(' ', a->>'service', a->>'environment', a->>'resource', a->>'operation');
          -- The smallest of these caps is 256: a shorter part has nothing cut.
          IF length(part) > 256 THEN
            capped := concat_ws(' ', left(a->>'service', 256), left(a->>'environment', 256), left(a->>'resource', 1024), left(a->>'operation', 512));
            IF length(capped) < length(part) THEN
              cut := true;
              part := capped;
            END IF;
          END IF;
          parts[kept] := part;
        END IF;
      END LOOP;
      -- Elements left over (objects or not): the index may miss actions.
      IF i < n THEN
        cut := true;
      END IF;
    END IF;
  END IF;
  -- array_to_string of no actions is NULL, as string_agg over no rows was: concat_ws skips it.
  whole := concat_ws(' ', left(reason, 4096), top, array_to_string(parts, ' '));
  IF length(whole) > 16384 THEN
    cut := true;
    whole := left(whole, 16384);
  END IF;
  IF cut THEN
    RETURN lower(whole) || chr(1);
  END IF;
  RETURN lower(whole);
END;
$$;

-- Whether an event's search_text and facets left part of it out (the mark above).
CREATE FUNCTION "audit_event_search_cut"(search_text text) RETURNS boolean
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT right(search_text, 1) = chr(1) $$;

-- What audit_event_search_text indexes, from every action and without any cap.
CREATE FUNCTION "audit_event_search_text_full"(reason text, data jsonb) RETURNS text
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
    top := concat_ws(' ', data->>'method', data->>'url', data->>'service', data->>'code');
    actions := data->'actions';
    IF jsonb_typeof(actions) = 'array' THEN
      n := jsonb_array_length(actions);
      WHILE i < n LOOP
        a := actions->i;
        i := i + 1;
        IF jsonb_typeof(a) = 'object' THEN
          kept := kept + 1;
          parts[kept] := concat_ws(' ', a->>'service', a->>'environment', a->>'resource', a->>'operation');
        END IF;
      END LOOP;
    END IF;
  END IF;
  RETURN lower(concat_ws(' ', reason, top, array_to_string(parts, ' ')));
END;
$$;

-- What audit_event_facets holds, from every action. Facets over 300 bytes stay out, as there: no
-- filter value can name one (filter values are at most 100 characters).
CREATE FUNCTION "audit_event_facets_full"(type text, outcome text, effect text, actor_type text, actor_id text, data jsonb) RETURNS text[]
  LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
  AS $$
DECLARE
  candidates text[];
  m integer := 4;
  actions jsonb;
  a jsonb;
  n integer;
  i integer := 0;
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
      WHILE i < n LOOP
        a := actions->i;
        i := i + 1;
        IF jsonb_typeof(a) = 'object' THEN
          m := m + 1;
          candidates[m] := 'service:' || (a->>'service');
          m := m + 1;
          candidates[m] := 'environment:' || (a->>'environment');
        END IF;
      END LOOP;
    END IF;
  END IF;
  RETURN (SELECT coalesce(array_agg(DISTINCT x ORDER BY x), '{}') FROM unnest(candidates) AS x
           WHERE x IS NOT NULL AND octet_length(x) <= 300);
END;
$$;

-- Rows stored before keep the search_text they were given, without the mark. Those the caps cut
-- (the only ones whose text the new definition changes) get it now: an UPDATE that changes
-- nothing stored but makes PostgreSQL compute the generated columns again. The content, and so
-- the hash chain, is untouched; the append-only trigger is off only inside this transaction.
ALTER TABLE "audit_events" DISABLE TRIGGER "audit_events_no_update_delete";
UPDATE "audit_events" SET "data" = "data"
 WHERE "search_text" IS DISTINCT FROM audit_event_search_text("reason", "data");
ALTER TABLE "audit_events" ENABLE TRIGGER "audit_events_no_update_delete";

-- The marked events only: an index entry for a cut event, nothing for the others.
CREATE INDEX "audit_events_search_cut_idx" ON "audit_events" ("seq") WHERE audit_event_search_cut("search_text");
