import type { RuntimeRole } from "./names";

/**
 * What each runtime role may do, object by object: the one list of Bulkhead's grants. After every
 * migration the grants step (grants.ts) makes the database match it exactly for the runtime roles
 * and PUBLIC, revoking whatever else they hold, so an object missing here is refused to both roles
 * (fail closed) and tests/integration/db/privilege-map.test.ts names it.
 *
 * Worked out from what each process reads and writes (Prisma and pg usage in app/ and lib/ for the
 * dashboard, cli/ for the CLI, proxy-worker/ and the lib/ functions it calls for the worker):
 * - audit tables: INSERT and SELECT only, INSERT limited to the columns a writer supplies (id, seq,
 *   prev_hash and hash come from the sequence and the chain trigger). Nobody but the owner may
 *   UPDATE, DELETE or TRUNCATE them, or touch audit_chain_head: the chain triggers that lock and
 *   advance the head run as their owner (SECURITY DEFINER, migration 20261201001000).
 * - the worker reads what its policy snapshot, token verifier, vault and CA are built from, never
 *   the private half of a signing key (it verifies tokens, it does not mint them) nor users beyond
 *   the approver's email; it writes approvals it holds, the usage time of credentials, the CA when
 *   none is usable, and audit events.
 * - the dashboard (and the CLI, which uses the dashboard's role) manages everything else, but
 *   deletes only what the product deletes (sessions, setup tokens, services, credentials,
 *   retired secrets past their retention, idempotency keys) and
 *   never creates approvals (only a held request does).
 */
export type TablePrivilege = "SELECT" | "INSERT" | "UPDATE" | "DELETE";

/** A privilege on the whole table (`true`) or on the listed columns only. */
export type TableGrant = Partial<Record<TablePrivilege, true | readonly string[]>>;

export interface PrivilegeMap {
  tables: Readonly<Record<string, Readonly<Record<RuntimeRole, TableGrant>>>>;
  /** USAGE (nextval for column defaults); never UPDATE, so no role can setval. */
  sequences: Readonly<Record<string, readonly RuntimeRole[]>>;
  /** EXECUTE, by function name. Trigger functions are listed with no roles: firing a trigger needs no EXECUTE. */
  functions: Readonly<Record<string, readonly RuntimeRole[]>>;
}

const AUDIT_EVENT_COLUMNS = ["at", "type", "actor_type", "actor_id", "agent_id", "task_id", "outcome", "effect", "reason", "rule_id", "data"] as const;
const CHECKPOINT_COLUMNS = ["seq", "hash", "key_id", "signature", "number", "prev_signature", "signed_at"] as const;
const PUBLIC_SIGNING_KEY_COLUMNS = ["kid", "alg", "public_jwk", "status", "created_at", "retiring_at", "verify_until", "retired_at"] as const;

const CRUD: TableGrant = { SELECT: true, INSERT: true, UPDATE: true, DELETE: true };
const CRU: TableGrant = { SELECT: true, INSERT: true, UPDATE: true };
const READ: TableGrant = { SELECT: true };
const NONE: TableGrant = {};
const AUDIT_APPEND: TableGrant = { SELECT: true, INSERT: AUDIT_EVENT_COLUMNS };
const CHECKPOINT_APPEND: TableGrant = { SELECT: true, INSERT: CHECKPOINT_COLUMNS };
const CA_WRITE: TableGrant = { SELECT: true, INSERT: true, UPDATE: ["retired_at"] };

export const PRIVILEGES: PrivilegeMap = {
  tables: {
    _prisma_migrations: { dashboard: NONE, worker: NONE },
    users: { dashboard: CRU, worker: { SELECT: ["id", "email"] } },
    accounts: { dashboard: { SELECT: true, INSERT: true }, worker: NONE },
    sessions: { dashboard: CRUD, worker: NONE },
    // Failed sign-ins per account and per address (the dashboard's sign-in throttle).
    sign_in_throttles: { dashboard: CRUD, worker: NONE },
    setup_tokens: { dashboard: CRUD, worker: NONE },
    agents: { dashboard: CRU, worker: READ },
    // The worker marks tasks expired at expiresAt (kill switch) and nothing else.
    tasks: { dashboard: CRU, worker: { SELECT: true, UPDATE: ["status", "ended_at", "ended_reason"] } },
    services: { dashboard: CRUD, worker: READ },
    signing_keys: { dashboard: CRU, worker: { SELECT: PUBLIC_SIGNING_KEY_COLUMNS } },
    issued_tokens: { dashboard: CRU, worker: READ },
    credentials: { dashboard: CRUD, worker: { SELECT: true, UPDATE: ["last_used_at"] } },
    // Secrets credentials no longer inject: written and pruned by the dashboard with the rotation or
    // deletion that retires them, resealed (only) by master-key rotation; the worker reads them to
    // redact them.
    retired_secrets: { dashboard: { SELECT: true, INSERT: true, UPDATE: ["secret_sealed"], DELETE: true }, worker: READ },
    api_keys: { dashboard: CRU, worker: NONE },
    // A decision never rewrites what was held (digest, method, URL, actions).
    // Either side cancels an approval whose task, agent or token went away (kill switch).
    approvals: {
      dashboard: { SELECT: true, UPDATE: ["status", "decided_by_id", "decided_at", "decision_note", "cancelled_at", "cancel_reason"] },
      worker: { SELECT: true, INSERT: true, UPDATE: ["status", "consumed_at", "cancelled_at", "cancel_reason"] },
    },
    // One row per person approving a request that needs several; only the dashboard records them.
    approval_votes: { dashboard: { SELECT: true, INSERT: true }, worker: READ },
    // Which agents or services an approver answers for (Settings); the worker never needs it.
    approver_scopes: { dashboard: CRUD, worker: NONE },
    // Approval webhooks: the dashboard sends them and alone reads their sealed secrets; the
    // worker's changes to approvals queue deliveries through a SECURITY DEFINER trigger.
    webhooks: { dashboard: CRUD, worker: NONE },
    webhook_deliveries: { dashboard: CRU, worker: NONE },
    // The admin API's Idempotency-Keys (lib/http/idempotency.ts): claimed, completed, released
    // and expired by the dashboard's route wrapper; the worker serves no admin API.
    idempotency_keys: { dashboard: CRUD, worker: NONE },
    // The launcher (`bulkhead sandbox run`, the dashboard's role) records and removes sandboxes;
    // the worker only counts the escape attempts its fence and resolver block.
    sandboxes: { dashboard: CRU, worker: { SELECT: true, UPDATE: ["blocked_attempts"] } },
    settings: { dashboard: CRU, worker: READ },
    // The incident replay's runs: recorded by `bulkhead replay` (the CLI), shown on the Replay page.
    replay_runs: { dashboard: { SELECT: true, INSERT: true }, worker: NONE },
    certificate_authorities: { dashboard: CA_WRITE, worker: CA_WRITE },
    audit_events: { dashboard: AUDIT_APPEND, worker: AUDIT_APPEND },
    audit_chain_head: { dashboard: READ, worker: READ },
    // Checkpoints are signed by the launcher's signer, which connects as the dashboard's role
    // (lib/audit/signer.ts); the worker no longer holds a signing key, so it only reads them.
    audit_checkpoints: { dashboard: CHECKPOINT_APPEND, worker: READ },
    // The shipper's position per write-ahead log: created once, then only moved forward (trigger).
    audit_wal_cursors: { dashboard: READ, worker: { SELECT: true, INSERT: ["wal_id", "worker_id"], UPDATE: ["lsn", "updated_at"] } },
    // Retention markers: written only by the owner (audit_apply_retention); whoever verifies the
    // chain (the dashboard's status, `bulkhead audit verify`, any role that reads the audit) reads
    // them to start where retention left it, so both roles may read them, like the checkpoints.
    audit_retention: { dashboard: READ, worker: READ },
  },
  sequences: {
    audit_events_id_seq: ["dashboard", "worker"],
    audit_checkpoints_id_seq: ["dashboard"],
    audit_retention_id_seq: [],
  },
  functions: {
    // Called by the chain's row trigger, which runs as the inserting role.
    audit_chain_field: ["dashboard", "worker"],
    audit_event_canonical_text: ["dashboard", "worker"],
    audit_event_hash: ["dashboard", "worker"],
    // The audit search's generated columns (search_text, facets), computed as the inserting role.
    audit_event_actions: ["dashboard", "worker"],
    audit_event_search_text: ["dashboard", "worker"],
    audit_event_facets: ["dashboard", "worker"],
    // The index of events those columns cut (its predicate runs at every insert) and the full
    // text and facets searched for them (by the dashboard; the worker reads the audit too).
    audit_event_search_cut: ["dashboard", "worker"],
    audit_event_search_text_full: ["dashboard", "worker"],
    audit_event_facets_full: ["dashboard", "worker"],
    // Locked the head for the old spool replayer; the write-ahead log's shipper needs no lock.
    audit_chain_lock_head: [],
    // Audit retention deletes as the owner only: no runtime role may call it (it runs with the
    // caller's rights, so it could not delete for one anyway).
    audit_apply_retention: [],
    // Trigger functions.
    audit_retention_append_only: [],
    audit_events_append_only: [],
    audit_events_actor_guard: [],
    audit_events_chain_lock: [],
    audit_events_chain: [],
    audit_events_chain_advance: [],
    audit_chain_head_guard: [],
    audit_checkpoints_append_only: [],
    audit_wal_cursor_forward_only: [],
    bulkhead_notify_policy: [],
    bulkhead_notify_policy_row: [],
    bulkhead_notify_approval: [],
    approval_status_transition: [],
    task_status_transition: [],
    task_update_guard: [],
    audit_events_system_actor_guard: [],
    certificate_authority_guard: [],
    certificate_authority_audited: [],
    bulkhead_enqueue_webhooks: [],
  },
};
