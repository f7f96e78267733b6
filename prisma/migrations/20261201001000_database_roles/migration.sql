-- Least privilege (docs/database.md). The dashboard and the proxy worker connect as their own
-- roles, which hold INSERT and SELECT on the audit tables and nothing on audit_chain_head but
-- SELECT; the owner role that runs these migrations owns everything. Grants to the runtime roles
-- are not written here (their names differ between installations): the grants step applies
-- lib/db/roles/privileges.ts after every migration.

-- The chain's statement triggers lock the head (SELECT ... FOR UPDATE) and move it (UPDATE),
-- which the runtime roles may not do themselves: they run as the functions' owner. The pinned
-- search_path keeps a caller's search_path from redirecting any name inside them. The row
-- trigger audit_events_chain only reads, so it keeps running as the inserting role.
ALTER FUNCTION "audit_events_chain_lock"() SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp;
ALTER FUNCTION "audit_events_chain_advance"() SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp;

-- The worker's spool replayer locks the head before it looks for events that are already stored,
-- so that no insert still in flight is missed (proxy-worker/audit/store.ts). This is that lock,
-- and only that: it returns nothing and changes nothing.
CREATE FUNCTION "audit_chain_lock_head"() RETURNS void LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog, public, pg_temp
  AS $$
BEGIN
  PERFORM 1 FROM "audit_chain_head" WHERE id = 1 FOR UPDATE;
END;
$$;

-- Functions are executable by PUBLIC when created; these three run as the owner, so nobody may
-- call them until the grants step says who (triggers fire without EXECUTE).
REVOKE EXECUTE ON FUNCTION "audit_events_chain_lock"(), "audit_events_chain_advance"(), "audit_chain_lock_head"() FROM PUBLIC;
