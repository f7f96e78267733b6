/**
 * Functions that change something even inside a plain SELECT. Unknown (user) functions are
 * treated as reads: their bodies were created by statements that are themselves classified
 * (`CREATE FUNCTION` is irreversible), so the risk is accounted for where it enters.
 */
import type { Effect } from "@/lib/semantics/types";

interface FunctionRule {
  effect: Effect;
  note: string;
}

const RULES = new Map<string, FunctionRule>();
function add(effect: Effect, note: string, names: string[]): void {
  for (const name of names) RULES.set(name, { effect, note });
}

add("irreversible", "runs SQL that cannot be analysed", [
  "dblink", "dblink_exec", "dblink_send_query", "dblink_open", "query_to_xml",
  "query_to_xml_and_xmlschema", "query_to_xmlschema", "cursor_to_xml",
]);
add("irreversible", "writes or removes files on the database server", [
  "lo_export", "pg_file_write", "pg_file_unlink", "pg_file_rename", "pg_file_sync",
]);
add("irreversible", "promotes a standby (failover cannot be undone)", ["pg_promote"]);
add("destructive", "ends other sessions or destroys data outside tables", [
  "pg_terminate_backend", "lo_unlink", "lo_truncate", "lo_truncate64", "pg_drop_replication_slot",
  "pg_replication_origin_drop", "pg_truncate_visibility_map",
]);
add("write", "changes server or session state", [
  "pg_cancel_backend", "set_config", "pg_reload_conf", "pg_rotate_logfile", "pg_switch_wal",
  "pg_create_restore_point", "pg_backup_start", "pg_backup_stop", "pg_start_backup", "pg_stop_backup",
  "pg_create_physical_replication_slot", "pg_create_logical_replication_slot", "pg_copy_physical_replication_slot",
  "pg_copy_logical_replication_slot", "pg_logical_emit_message", "pg_wal_replay_pause", "pg_wal_replay_resume",
  "pg_import_system_collations", "pg_notify", "dblink_connect", "dblink_connect_u", "dblink_disconnect",
  "pg_replication_origin_create", "pg_replication_origin_session_setup", "pg_log_backend_memory_contexts",
]);
add("write", "advances or resets a sequence", ["nextval", "setval"]);
add("write", "takes an advisory lock", [
  "pg_advisory_lock", "pg_advisory_lock_shared", "pg_advisory_xact_lock", "pg_advisory_xact_lock_shared",
  "pg_try_advisory_lock", "pg_try_advisory_lock_shared", "pg_try_advisory_xact_lock",
  "pg_try_advisory_xact_lock_shared", "pg_advisory_unlock", "pg_advisory_unlock_shared", "pg_advisory_unlock_all",
]);
add("write", "writes a large object", [
  "lo_create", "lo_creat", "lo_import", "lo_from_bytea", "lo_put", "lowrite", "lo_open",
]);
add("write", "reads files on the database server, outside any table", [
  "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "pg_ls_logdir", "pg_ls_waldir",
  "pg_ls_tmpdir", "pg_ls_archive_statusdir", "pg_current_logfile",
]);

/** The effect of calling `name` (last part of a possibly qualified name), or null for a plain read. */
export function functionEffect(name: string): FunctionRule | null {
  const lower = name.toLowerCase();
  const rule = RULES.get(lower);
  if (rule) return rule;
  if (lower.startsWith("pg_stat_reset")) return { effect: "destructive", note: "resets collected statistics" };
  if (lower.startsWith("dblink")) return { effect: "irreversible", note: "runs SQL that cannot be analysed" };
  return null;
}
