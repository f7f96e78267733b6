-- Searching the audit log at a million events (docs/audit.md, "Searching").
--
-- Two generated columns, computed by the database from each row as it is inserted (every writer
-- gets them without knowing they exist, and nothing in the hash chain changes):
--   search_text  lower-cased reason, method, URL, service, refusal code and each semantic
--                action's service, environment, resource and operation, for substring search
--                through a trigram (pg_trgm) GIN index;
--   facets       "type:…", "kind:…", "outcome:…", "effect:…", "service:…", "environment:…" and
--                "actor:<type>:<id>" (non-agent actors) for equality filters, through one GIN
--                index, so that any combination of filters is a bitmap AND and a rare value
--                (outcome "approve", one environment) is found without walking the whole log.
-- The three functions run whenever a row is inserted, as the inserting role: the runtime roles
-- need EXECUTE on them (PostgreSQL grants it to PUBLIC when they are created).
-- Both functions are total: agent-controlled data of any shape (actions that are not an array,
-- elements that are not objects, huge strings) yields a bounded value and never an error, so a
-- search column can never make an audit insert fail. Lengths are capped so a crafted event
-- cannot make its index entries expensive.
--
-- pg_trgm is a trusted extension (PostgreSQL 13+): the migration's owner role can create it
-- without being a superuser; the runtime roles never need to. It goes into a schema of its own,
-- so that its functions do not join the schema public whose privileges Bulkhead manages; where
-- it is already installed (elsewhere), that installation is used. Index maintenance and LIKE
-- through the index need no privilege on it.
CREATE SCHEMA IF NOT EXISTS "bulkhead_extensions";
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
    CREATE EXTENSION pg_trgm WITH SCHEMA "bulkhead_extensions";
  END IF;
END;
$$;

CREATE FUNCTION "audit_event_actions"(data jsonb) RETURNS SETOF jsonb
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT a FROM jsonb_array_elements(
           CASE WHEN jsonb_typeof(data) = 'object' AND jsonb_typeof(data->'actions') = 'array' THEN data->'actions' ELSE '[]'::jsonb END
         ) AS a
         WHERE jsonb_typeof(a) = 'object'
         LIMIT 100 $$;

-- Only an object's keys are read: `->>` on a scalar or an array would otherwise be NULL anyway.
CREATE FUNCTION "audit_event_search_text"(reason text, data jsonb) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT lower(left(concat_ws(' ',
           left(reason, 4096),
           CASE WHEN jsonb_typeof(data) = 'object' THEN concat_ws(' ',
             left(data->>'method', 64), left(data->>'url', 4096), left(data->>'service', 256), left(data->>'code', 256)) END,
           (SELECT string_agg(concat_ws(' ', left(a->>'service', 256), left(a->>'environment', 256),
                                        left(a->>'resource', 1024), left(a->>'operation', 512)), ' ')
              FROM audit_event_actions(data) AS a)
         ), 16384)) $$;

CREATE FUNCTION "audit_event_facets"(type text, outcome text, effect text, actor_type text, actor_id text, data jsonb) RETURNS text[]
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT coalesce(array_agg(DISTINCT f ORDER BY f), '{}') FROM (
           SELECT 'type:' || type AS f
           UNION ALL SELECT 'kind:' || split_part(type, '.', 1)
           UNION ALL SELECT 'outcome:' || outcome
           UNION ALL SELECT 'effect:' || effect
           UNION ALL SELECT 'actor:' || actor_type || ':' || actor_id WHERE actor_type <> 'agent'
           UNION ALL SELECT 'service:' || (data->>'service') WHERE jsonb_typeof(data) = 'object'
           UNION ALL SELECT 'service:' || (a->>'service') FROM audit_event_actions(data) AS a
           UNION ALL SELECT 'environment:' || (a->>'environment') FROM audit_event_actions(data) AS a
         ) AS x WHERE f IS NOT NULL AND octet_length(f) <= 300 $$;

-- facets is NOT NULL because Prisma models a list as never null; the function cannot return NULL
-- (coalesce), so the constraint can never refuse an event.
-- STORED: PostgreSQL 18 makes generated columns virtual by default, and virtual ones cannot be
-- indexed. Adding them rewrites the table once (row triggers do not fire on a rewrite).
ALTER TABLE "audit_events"
  ADD COLUMN "search_text" TEXT GENERATED ALWAYS AS (audit_event_search_text(reason, data)) STORED,
  ADD COLUMN "facets" TEXT[] NOT NULL GENERATED ALWAYS AS (audit_event_facets(type, outcome, effect, actor_type, actor_id, data)) STORED;

DO $$
DECLARE
  ext_schema text;
BEGIN
  SELECT n.nspname INTO ext_schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm';
  EXECUTE format('CREATE INDEX "audit_events_search_text_idx" ON "audit_events" USING GIN ("search_text" %I.gin_trgm_ops)', ext_schema);
END;
$$;
CREATE INDEX "audit_events_facets_idx" ON "audit_events" USING GIN ("facets");
