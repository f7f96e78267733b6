-- The audit hash chain, computed by the database itself so that every writer (the app's Prisma
-- transactions, the proxy workers' batches, a psql session) is chained the same way.
--
-- Canonical text, version 1 (docs/audit.md; lib/audit/chain.ts recomputes the same bytes):
--
--   bulkhead-audit-v1|<seq>|<prev_hash>|<at>|<type>|<actor_type>|<actor_id>|<agent_id>|<task_id>
--     |<outcome>|<effect>|<reason>|<rule_id>|<data>
--
-- seq is decimal, prev_hash is 64 lowercase hex digits, at is the UTC instant as
-- YYYY-MM-DDTHH:MM:SS.mmmZ. Every later field is "-" for NULL or "<n>:<value>" where n is the
-- value's length in UTF-8 bytes, so "|" inside a value, empty strings and NULL can never be
-- confused. data is jsonb's own text form (keys sorted, duplicates removed, fixed spacing), which
-- is canonical for a given jsonb value. hash = lowercase hex SHA-256 of the text's UTF-8 bytes.

-- Field lengths are UTF-8 byte counts; in a UTF8 database that is octet_length, which is cheap.
DO $$
BEGIN
  IF current_setting('server_encoding') <> 'UTF8' THEN
    RAISE EXCEPTION 'the audit hash chain needs a UTF8 database (this one is %); create it with ENCODING ''UTF8''',
      current_setting('server_encoding');
  END IF;
END;
$$;

-- Plain SQL bodies so that the planner inlines them into the trigger's expression.
CREATE FUNCTION "audit_chain_field"(value text) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT CASE WHEN value IS NULL THEN '-' ELSE octet_length(value)::text || ':' || value END $$;

CREATE FUNCTION "audit_event_canonical_text"(
  seq bigint, prev_hash text, at timestamptz, type text, actor_type text, actor_id text, agent_id uuid,
  task_id uuid, outcome text, effect text, reason text, rule_id text, data jsonb
) RETURNS text
  LANGUAGE sql STABLE PARALLEL SAFE
  AS $$ SELECT 'bulkhead-audit-v1|' || seq::text || '|' || prev_hash || '|'
    || to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '|'
    || audit_chain_field(type) || '|' || audit_chain_field(actor_type) || '|'
    || audit_chain_field(actor_id) || '|' || audit_chain_field(agent_id::text) || '|'
    || audit_chain_field(task_id::text) || '|' || audit_chain_field(outcome) || '|'
    || audit_chain_field(effect) || '|' || audit_chain_field(reason) || '|'
    || audit_chain_field(rule_id) || '|' || audit_chain_field(data::text) $$;

CREATE FUNCTION "audit_event_hash"(
  seq bigint, prev_hash text, at timestamptz, type text, actor_type text, actor_id text, agent_id uuid,
  task_id uuid, outcome text, effect text, reason text, rule_id text, data jsonb
) RETURNS text
  LANGUAGE sql STABLE PARALLEL SAFE
  AS $$ SELECT encode(sha256(convert_to(audit_event_canonical_text(
    seq, prev_hash, at, type, actor_type, actor_id, agent_id, task_id, outcome, effect, reason, rule_id, data
  ), 'UTF8')), 'hex') $$;

-- Chain the rows that already exist, oldest id first. The append-only trigger is switched off
-- for this and switched on again before the migration commits (migrations run in a transaction).
ALTER TABLE "audit_events" DISABLE TRIGGER "audit_events_no_update_delete";

DO $$
DECLARE
  r record;
  s bigint := 0;
  h text := repeat('0', 64);
  nh text;
BEGIN
  FOR r IN SELECT * FROM "audit_events" ORDER BY id LOOP
    s := s + 1;
    nh := audit_event_hash(s, h, r.at, r.type, r.actor_type, r.actor_id, r.agent_id, r.task_id,
                           r.outcome, r.effect, r.reason, r.rule_id, r.data);
    UPDATE "audit_events" SET seq = s, prev_hash = h, hash = nh WHERE id = r.id;
    h := nh;
  END LOOP;
  INSERT INTO "audit_chain_head" (id, seq, hash) VALUES (1, s, h);
END;
$$;

ALTER TABLE "audit_events" ENABLE TRIGGER "audit_events_no_update_delete";

-- Chaining new rows. A statement-level BEFORE trigger locks the head row (FOR UPDATE) once per
-- statement and keeps it until commit, so seq order is commit order is chain order however many
-- writers there are (ids from the sequence may interleave; verifiers order by seq). The row
-- trigger continues from the newest row this transaction has inserted past the head (row triggers
-- see the rows processed earlier in the same command), or from the head itself; a statement-level
-- AFTER trigger moves the head once. Moving the head once per statement rather than once per row
-- keeps a 500-row batch linear: every UPDATE of the one head row lengthens that row's version
-- chain inside the transaction. Whatever the client sent for seq, prev_hash and hash is ignored.
CREATE FUNCTION "audit_events_chain_lock"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM "audit_chain_head" WHERE id = 1 FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'audit_chain_head has no row; the audit chain cannot continue'
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  RETURN NULL;
END;
$$;

CREATE FUNCTION "audit_events_chain"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  last_seq bigint;
  last_hash text;
BEGIN
  SELECT coalesce(e.seq, h.seq), coalesce(e.hash, h.hash) INTO last_seq, last_hash
    FROM "audit_chain_head" h
    LEFT JOIN LATERAL (
      SELECT a.seq, a.hash FROM "audit_events" a WHERE a.seq > h.seq ORDER BY a.seq DESC LIMIT 1
    ) e ON true
    WHERE h.id = 1;
  NEW.seq := last_seq + 1;
  NEW.prev_hash := last_hash;
  NEW.hash := audit_event_hash(NEW.seq, NEW.prev_hash, NEW.at, NEW.type, NEW.actor_type, NEW.actor_id,
                               NEW.agent_id, NEW.task_id, NEW.outcome, NEW.effect, NEW.reason, NEW.rule_id, NEW.data);
  RETURN NEW;
END;
$$;

CREATE FUNCTION "audit_events_chain_advance"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE "audit_chain_head" h SET seq = e.seq, hash = e.hash, updated_at = now()
    FROM (
      SELECT a.seq, a.hash FROM "audit_events" a
      WHERE a.seq > (SELECT seq FROM "audit_chain_head" WHERE id = 1)
      ORDER BY a.seq DESC LIMIT 1
    ) e
    WHERE h.id = 1;
  RETURN NULL;
END;
$$;

CREATE TRIGGER "audit_events_chain_lock" BEFORE INSERT ON "audit_events"
  FOR EACH STATEMENT EXECUTE FUNCTION "audit_events_chain_lock"();

CREATE TRIGGER "audit_events_chain" BEFORE INSERT ON "audit_events"
  FOR EACH ROW EXECUTE FUNCTION "audit_events_chain"();

CREATE TRIGGER "audit_events_chain_advance" AFTER INSERT ON "audit_events"
  FOR EACH STATEMENT EXECUTE FUNCTION "audit_events_chain_advance"();

-- The head moves only through the chain triggers (trigger depth > 1): a direct INSERT, UPDATE,
-- DELETE or TRUNCATE is refused. Like the append-only trigger this stops mistakes and the
-- application role, not the table owner, who can disable triggers: signed checkpoints cover that.
CREATE FUNCTION "audit_chain_head_guard"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND pg_trigger_depth() > 1 THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'audit_chain_head moves only with audit inserts: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER "audit_chain_head_guard" BEFORE INSERT OR UPDATE OR DELETE ON "audit_chain_head"
  FOR EACH ROW EXECUTE FUNCTION "audit_chain_head_guard"();

CREATE TRIGGER "audit_chain_head_no_truncate" BEFORE TRUNCATE ON "audit_chain_head"
  FOR EACH STATEMENT EXECUTE FUNCTION "audit_chain_head_guard"();

-- Checkpoints are evidence too: append-only like the events.
CREATE FUNCTION "audit_checkpoints_append_only"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_checkpoints is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER "audit_checkpoints_no_update_delete" BEFORE UPDATE OR DELETE ON "audit_checkpoints"
  FOR EACH ROW EXECUTE FUNCTION "audit_checkpoints_append_only"();

CREATE TRIGGER "audit_checkpoints_no_truncate" BEFORE TRUNCATE ON "audit_checkpoints"
  FOR EACH STATEMENT EXECUTE FUNCTION "audit_checkpoints_append_only"();
