/**
 * What calling a function does, even inside a plain SELECT. Three sources, in this order:
 *   1. functions known to change something (below), whatever schema or case they are spelled in;
 *   2. built-ins known to be read-only (`sql-builtins.ts`), called unqualified or as `pg_catalog.x`;
 *   3. functions the service's descriptor declares read-only (`sql.readOnlyFunctions`).
 * Anything else is at least a write: a function Bulkhead has not seen can do anything
 * (`SELECT purge_tenant(42)`), and it existed before the task, so no earlier decision covered it.
 */
import { BUILTIN_OPERATORS, isReadOnlyBuiltin } from "@/lib/semantics/sql-builtins";
import type { Effect } from "@/lib/semantics/types";

export interface FunctionRule {
  effect: Effect;
  note: string;
  /** Not a function Bulkhead knows: at least a write because nothing says otherwise. */
  unknown?: true;
}

const RULES = new Map<string, FunctionRule>();
function add(effect: Effect, note: string, names: string[]): void {
  for (const name of names) RULES.set(name, { effect, note });
}

add("irreversible", "runs SQL that cannot be analysed", [
  "dblink", "dblink_exec", "dblink_send_query", "dblink_open", "query_to_xml",
  "query_to_xml_and_xmlschema", "query_to_xmlschema", "cursor_to_xml", "cursor_to_xmlschema",
  "ts_stat", "ts_rewrite", "crosstab", "connectby",
]);
add("irreversible", "writes or removes files on the database server", [
  "lo_export", "pg_file_write", "pg_file_unlink", "pg_file_rename", "pg_file_sync",
]);
add("irreversible", "promotes a standby (failover cannot be undone)", ["pg_promote"]);
add("destructive", "ends other sessions or destroys data outside tables", [
  "pg_terminate_backend", "lo_unlink", "lo_truncate", "lo_truncate64", "pg_drop_replication_slot",
  "pg_replication_origin_drop", "pg_truncate_visibility_map", "pg_stat_statements_reset",
  "pg_clear_relation_stats", "pg_clear_attribute_stats",
]);
add("destructive", "consumes replication data other consumers need", [
  "pg_logical_slot_get_changes", "pg_logical_slot_get_binary_changes", "pg_replication_slot_advance",
]);
add("write", "changes server or session state", [
  "pg_cancel_backend", "set_config", "pg_reload_conf", "pg_rotate_logfile", "pg_switch_wal",
  "pg_create_restore_point", "pg_backup_start", "pg_backup_stop", "pg_start_backup", "pg_stop_backup",
  "pg_create_physical_replication_slot", "pg_create_logical_replication_slot", "pg_copy_physical_replication_slot",
  "pg_copy_logical_replication_slot", "pg_logical_emit_message", "pg_wal_replay_pause", "pg_wal_replay_resume",
  "pg_import_system_collations", "pg_notify", "dblink_connect", "dblink_connect_u", "dblink_disconnect",
  "pg_replication_origin_create", "pg_replication_origin_session_setup", "pg_log_backend_memory_contexts",
  "pg_replication_origin_advance", "pg_replication_origin_session_reset", "pg_replication_origin_xact_setup",
  "pg_replication_origin_xact_reset", "pg_log_standby_snapshot", "pg_sync_replication_slots",
  "pg_restore_relation_stats", "pg_restore_attribute_stats", "pg_extension_config_dump", "setseed",
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

function knownEffect(lower: string): FunctionRule | null {
  const rule = RULES.get(lower);
  if (rule) return rule;
  if (lower.startsWith("pg_stat_reset")) return { effect: "destructive", note: "resets collected statistics" };
  if (lower.startsWith("dblink")) return { effect: "irreversible", note: "runs SQL that cannot be analysed" };
  if (lower.startsWith("binary_upgrade_")) return { effect: "irreversible", note: "rewrites catalog state during upgrades" };
  return null;
}

const UNKNOWN: FunctionRule = {
  effect: "write",
  note: "function not known to be read-only (a service may declare it in sql.readOnlyFunctions)",
  unknown: true,
};

/**
 * The effect of calling a function named by `parts` (`["purge"]`, `["pg_catalog", "lower"]`), or
 * null when the call is a plain read. `readOnly` holds the descriptor's declared names, spelled
 * as PostgreSQL stores them (`name` for unqualified calls, `schema.name` for qualified ones).
 */
export function functionEffect(parts: readonly string[], readOnly: ReadonlySet<string> = new Set()): FunctionRule | null {
  const name = parts[parts.length - 1] ?? "";
  const known = knownEffect(name.toLowerCase());
  if (known) return known;
  const schema = parts.length > 1 ? parts.slice(0, -1).join(".") : null;
  if ((schema === null || schema === "pg_catalog") && isReadOnlyBuiltin(name)) return null;
  if (readOnly.has(parts.join("."))) return null;
  return UNKNOWN;
}

/** An operator runs a function too: only pg_catalog's operator symbols are known to be reads. */
export function operatorEffect(parts: readonly string[]): FunctionRule | null {
  const symbol = parts[parts.length - 1] ?? "";
  const schema = parts.length > 1 ? parts.slice(0, -1).join(".") : null;
  if ((schema === null || schema === "pg_catalog") && BUILTIN_OPERATORS.has(symbol)) return null;
  return { effect: "write", note: "operator not known to be built-in (an operator runs a function)" };
}
