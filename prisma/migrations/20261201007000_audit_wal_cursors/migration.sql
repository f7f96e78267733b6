-- The proxy worker's audit write-ahead log ships its events to audit_events in batches; this
-- table holds, per log, the last log sequence number (LSN) already in audit_events. The shipper
-- moves it in the same statement that inserts the batch, so a batch is in the database exactly
-- when its cursor is (docs/audit.md). A log is identified by a random id made when its directory
-- is created, so a fresh directory never inherits another log's position.

-- CreateTable
CREATE TABLE "audit_wal_cursors" (
    "wal_id" UUID NOT NULL,
    "worker_id" TEXT NOT NULL,
    "lsn" BIGINT NOT NULL DEFAULT 0,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "audit_wal_cursors_pkey" PRIMARY KEY ("wal_id")
);

-- A cursor only moves forward: moving it back would ship events again (duplicates in the
-- chain). Moving it forward without the events is what the chain cannot show, which is why the
-- shipper moves it only in the statement that inserts them.
CREATE FUNCTION "audit_wal_cursor_forward_only"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.lsn < OLD.lsn OR NEW.wal_id <> OLD.wal_id THEN
    RAISE EXCEPTION 'audit_wal_cursors only move forward (% -> %)', OLD.lsn, NEW.lsn
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END;
$$;

CREATE TRIGGER "audit_wal_cursors_forward_only" BEFORE UPDATE ON "audit_wal_cursors"
  FOR EACH ROW EXECUTE FUNCTION "audit_wal_cursor_forward_only"();
