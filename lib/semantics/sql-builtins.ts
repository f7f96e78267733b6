/**
 * PostgreSQL built-in functions and operators known to change nothing: the only calls a plain
 * SELECT may make and still be a read. Everything not listed here (and not declared read-only by
 * the service's descriptor) is at least a write, because a function Bulkhead has not seen can
 * do anything (`SELECT purge_tenant(42)`).
 *
 * Listed: pure computations (math, strings, dates, JSON, arrays, ranges, text search, XML over
 * tables), aggregates and window functions, and catalog/system information. Left out on purpose:
 * anything that changes server, session or sequence state, takes locks, touches files, large
 * objects or replication, or runs SQL given as text (those are in `sql-functions.ts`), and
 * extension functions (they live outside pg_catalog, where any user function may take the name).
 * Names are as PostgreSQL stores them: lower case.
 */

const names = (text: string): string[] => text.split(/\s+/).filter((n) => n !== "");

export const READ_ONLY_BUILTINS: ReadonlySet<string> = new Set(
  names(`
  abs cbrt ceil ceiling degrees div erf erfc exp factorial floor gamma gcd lcm lgamma ln log log10
  min_scale mod pi power pow radians round scale sign sqrt trim_scale trunc width_bucket random
  random_normal acos acosd asin asind atan atand atan2 atan2d cos cosd cot cotd sin sind tan tand
  sinh cosh tanh asinh acosh atanh
  ascii bit_length btrim char_length character_length chr concat concat_ws format initcap left
  length lower lpad ltrim md5 normalize octet_length overlay parse_ident position quote_ident
  quote_literal quote_nullable regexp_count regexp_instr regexp_like regexp_match regexp_matches
  regexp_replace regexp_split_to_array regexp_split_to_table regexp_substr repeat replace reverse
  right rpad rtrim split_part starts_with string_to_array string_to_table strpos substr substring
  to_ascii to_hex to_bin to_oct translate trim unistr upper casefold convert convert_from convert_to
  decode encode get_bit get_byte set_bit set_byte sha224 sha256 sha384 sha512 crc32 crc32c bit_count
  to_char to_date to_number to_timestamp is_normalized similar_to_escape similar_escape like_escape
  pg_collation_for xmltext
  age clock_timestamp date_add date_bin date_part date_subtract date_trunc extract isfinite
  justify_days justify_hours justify_interval make_date make_interval make_time make_timestamp
  make_timestamptz now statement_timestamp timeofday transaction_timestamp timezone overlaps
  enum_first enum_last enum_range
  area center diameter height isclosed isopen npoints pclose popen radius width box circle line lseg
  path point polygon bound_box
  abbrev broadcast family host hostmask inet_merge inet_same_family masklen netmask network
  set_masklen macaddr8_set7bit
  to_tsvector to_tsquery plainto_tsquery phraseto_tsquery websearch_to_tsquery ts_rank ts_rank_cd
  ts_headline setweight strip tsvector_to_array array_to_tsvector numnode querytree ts_debug
  ts_lexize ts_parse ts_token_type get_current_ts_config ts_delete ts_filter json_to_tsvector
  jsonb_to_tsvector
  gen_random_uuid uuidv4 uuidv7 uuid_extract_timestamp uuid_extract_version
  xmlcomment xmlconcat xmlagg xmlexists xml_is_well_formed xml_is_well_formed_document
  xml_is_well_formed_content xpath xpath_exists table_to_xml table_to_xmlschema
  table_to_xml_and_xmlschema schema_to_xml schema_to_xmlschema schema_to_xml_and_xmlschema
  database_to_xml database_to_xmlschema database_to_xml_and_xmlschema
  to_json to_jsonb array_to_json row_to_json json_build_array jsonb_build_array json_build_object
  jsonb_build_object json_object jsonb_object json_array_elements jsonb_array_elements
  json_array_elements_text jsonb_array_elements_text json_array_length jsonb_array_length json_each
  jsonb_each json_each_text jsonb_each_text json_extract_path jsonb_extract_path
  json_extract_path_text jsonb_extract_path_text json_object_keys jsonb_object_keys
  json_populate_record jsonb_populate_record jsonb_populate_record_valid json_populate_recordset
  jsonb_populate_recordset json_to_record jsonb_to_record json_to_recordset jsonb_to_recordset
  json_strip_nulls jsonb_strip_nulls jsonb_set jsonb_set_lax jsonb_insert jsonb_path_exists
  jsonb_path_match jsonb_path_query jsonb_path_query_array jsonb_path_query_first
  jsonb_path_exists_tz jsonb_path_match_tz jsonb_path_query_tz jsonb_path_query_array_tz
  jsonb_path_query_first_tz jsonb_pretty json_typeof jsonb_typeof json_agg jsonb_agg json_agg_strict
  jsonb_agg_strict json_object_agg jsonb_object_agg json_object_agg_strict jsonb_object_agg_strict
  json_object_agg_unique jsonb_object_agg_unique json_object_agg_unique_strict
  jsonb_object_agg_unique_strict
  currval lastval
  num_nonnulls num_nulls
  array_append array_cat array_dims array_fill array_length array_lower array_ndims array_position
  array_positions array_prepend array_remove array_replace array_reverse array_sample array_shuffle
  array_sort array_to_string array_upper cardinality trim_array unnest generate_subscripts array_agg
  isempty lower_inc upper_inc lower_inf upper_inf range_merge multirange int4range int8range numrange
  tsrange tstzrange daterange int4multirange int8multirange nummultirange tsmultirange
  tstzmultirange datemultirange range_agg range_intersect_agg
  avg bit_and bit_or bit_xor bool_and bool_or count every max min string_agg sum any_value corr
  covar_pop covar_samp regr_avgx regr_avgy regr_count regr_intercept regr_r2 regr_slope regr_sxx
  regr_sxy regr_syy stddev stddev_pop stddev_samp variance var_pop var_samp mode percentile_cont
  percentile_disc rank dense_rank percent_rank cume_dist grouping row_number ntile lag lead
  first_value last_value nth_value generate_series
  current_database current_query current_schema current_schemas current_user session_user
  system_user inet_client_addr inet_client_port inet_server_addr inet_server_port pg_backend_pid
  pg_blocking_pids pg_conf_load_time pg_my_temp_schema pg_is_other_temp_schema pg_jit_available
  pg_listening_channels pg_notification_queue_usage pg_postmaster_start_time
  pg_safe_snapshot_blocking_pids pg_trigger_depth version unicode_version icu_unicode_version
  current_setting pg_sleep pg_sleep_for pg_sleep_until
  has_any_column_privilege has_column_privilege has_database_privilege
  has_foreign_data_wrapper_privilege has_function_privilege has_language_privilege
  has_largeobject_privilege has_parameter_privilege has_schema_privilege has_sequence_privilege
  has_server_privilege has_table_privilege has_tablespace_privilege has_type_privilege pg_has_role
  row_security_active acldefault aclexplode makeaclitem
  pg_collation_is_visible pg_conversion_is_visible pg_function_is_visible pg_opclass_is_visible
  pg_operator_is_visible pg_opfamily_is_visible pg_statistics_obj_is_visible pg_table_is_visible
  pg_ts_config_is_visible pg_ts_dict_is_visible pg_ts_parser_is_visible pg_ts_template_is_visible
  pg_type_is_visible
  format_type pg_basetype pg_char_to_encoding pg_encoding_to_char pg_get_catalog_foreign_keys
  pg_get_constraintdef pg_get_expr pg_get_functiondef pg_get_function_arguments
  pg_get_function_identity_arguments pg_get_function_result pg_get_indexdef pg_get_keywords
  pg_get_partkeydef pg_get_ruledef pg_get_serial_sequence pg_get_statisticsobjdef
  pg_get_triggerdef pg_get_userbyid pg_get_viewdef pg_index_column_has_property
  pg_index_has_property pg_indexam_has_property pg_options_to_table pg_settings_get_flags
  pg_tablespace_databases pg_tablespace_location pg_typeof to_regclass to_regcollation
  to_regnamespace to_regoper to_regoperator to_regproc to_regprocedure to_regrole to_regtype
  to_regtypemod pg_describe_object pg_identify_object pg_identify_object_as_address
  pg_get_object_address col_description obj_description shobj_description pg_input_is_valid
  pg_input_error_info pg_column_size pg_column_compression pg_column_toast_chunk_id
  pg_database_size pg_indexes_size pg_relation_size pg_size_bytes pg_size_pretty pg_table_size
  pg_tablespace_size pg_total_relation_size pg_relation_filenode pg_relation_filepath
  pg_filenode_relation pg_partition_tree pg_partition_ancestors pg_partition_root
  pg_current_snapshot pg_snapshot_xip pg_snapshot_xmax pg_snapshot_xmin pg_visible_in_snapshot
  pg_xact_status pg_current_xact_id_if_assigned txid_current_if_assigned txid_current_snapshot
  txid_snapshot_xip txid_snapshot_xmax txid_snapshot_xmin txid_status txid_visible_in_snapshot
  pg_xact_commit_timestamp pg_xact_commit_timestamp_origin pg_last_committed_xact
  pg_control_checkpoint pg_control_system pg_control_init pg_control_recovery pg_is_in_recovery
  pg_is_wal_replay_paused pg_get_wal_replay_pause_state pg_last_wal_receive_lsn
  pg_last_wal_replay_lsn pg_last_xact_replay_timestamp pg_current_wal_lsn
  pg_current_wal_insert_lsn pg_current_wal_flush_lsn pg_walfile_name pg_walfile_name_offset
  pg_split_walfile_name pg_wal_lsn_diff pg_logical_slot_peek_changes
  pg_logical_slot_peek_binary_changes pg_available_extensions pg_available_extension_versions
  pg_show_all_settings pg_get_backend_memory_contexts pg_get_shmem_allocations pg_get_wait_events
  pg_stat_have_stats pg_sequence_last_value pg_sequence_parameters lo_get
  bool int2 int4 int8 float4 float8 numeric text varchar bpchar date time timetz timestamp
  timestamptz interval name oid regclass json jsonb inet cidr macaddr macaddr8 money bit varbit
  tsvector tsquery uuid pg_lsn
`),
);

/** Operators PostgreSQL defines in pg_catalog, by symbol (BETWEEN forms are recognised by kind). */
export const BUILTIN_OPERATORS: ReadonlySet<string> = new Set(
  names(`
  + - * / % ^ |/ ||/ @ & | # ~ << >> = <> != < > <= >= || ~~ !~~ ~~* !~~* ~ ~* !~ !~* @> <@ &&
  ? ?| ?& @? @@ @@@ -> ->> #> #>> #- <-> <<| |>> &< &> <<= >>= ?# ?- ?|| ?-| @-@ ## <^ >^ &<| |&>
  -|- ^@ <% %> <<% %>> <<-> <->>
`),
);

/** Statistics accessors: reads, however many there are. */
export function isReadOnlyBuiltin(name: string): boolean {
  return READ_ONLY_BUILTINS.has(name) || name.startsWith("pg_stat_get_");
}
