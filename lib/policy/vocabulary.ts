/**
 * The operation names a service can produce, so a policy that names one it never produces is an
 * error rather than a rule that silently never applies. Some vocabularies are closed (a REST
 * service's routes), some open (any GraphQL field, any MCP tool, any SQL function): for open ones
 * a name must fit the protocol's grammar, and a name one or two edits from a known one is taken
 * for a typo (`volumDelete`), since it would match nothing the descriptor describes.
 */
import type { ServiceDescriptor } from "@/lib/semantics/descriptors/schema";
import { compileGlob, isGlob } from "@/lib/semantics/glob";
import { MCP_METHODS } from "@/lib/semantics/mcp";
import { READ_ONLY_BUILTINS } from "@/lib/semantics/sql-builtins";
import { closest } from "@/lib/policy/suggest";

export interface Vocabulary {
  /** Names the service is known to produce: lower-cased → as written. */
  known: Map<string, string>;
  /** Families of names (grammars) the service may also produce. */
  families: Array<(name: string) => boolean>;
}

/** "METHOD /path": requests no route names (REST services and unknown hosts). */
const methodPath = (name: string) => /^[a-z]+ \/\S*$/.test(name);
const graphqlName = (name: string) => /^[_a-z][_0-9a-z]*$/.test(name);
const mcpToolName = (name: string) => /^[a-z0-9_./-]{1,128}$/.test(name);
const sqlName = (name: string) =>
  /^[a-z]+(?: [a-z_]+)*$/.test(name) || /^[a-z_][a-z0-9_$]*(?:\.[a-z_][a-z0-9_$]*)*$/.test(name) || /^operator\(.+\)$/.test(name);

const SQL_STATEMENTS = `SELECT;INSERT;UPDATE;DELETE;MERGE;SELECT INTO;SELECT FOR UPDATE;SELECT FOR SHARE;EXPLAIN;COPY PROGRAM;COPY FROM;COPY TO FILE;TRUNCATE;DROP TABLE;DROP INDEX;DROP VIEW;DROP SCHEMA;DROP SEQUENCE;DROP FUNCTION;DROP TYPE;DROP MATVIEW;DROP EXTENSION;DROP TRIGGER;DROP DATABASE;DROP ROLE;DROP OWNED;ALTER TABLE;SET ROLE;SET SESSION AUTHORIZATION;RESET ROLE;RESET ALL;SHOW;BEGIN;COMMIT;ROLLBACK;SAVEPOINT;DO;CREATE FUNCTION;CREATE PROCEDURE;EXECUTE;CALL;LOAD;GRANT;REVOKE;GRANT ROLE;REVOKE ROLE;VACUUM;ANALYZE;LOCK;LISTEN;UNLISTEN;DEALLOCATE;FETCH;CLOSE;CREATE TABLE;CREATE INDEX;CREATE VIEW;CREATE RULE;CREATE TRIGGER;CREATE SEQUENCE;CREATE TABLE AS;CREATE MATERIALIZED VIEW;CREATE DATABASE;CREATE SCHEMA;CREATE EXTENSION;CREATE ROLE;ALTER ROLE;DISCARD;NOTIFY;CHECKPOINT;UNPARSEABLE;UNKNOWN;EMPTY`.split(";");
const SQL_SIDE_EFFECTS = "nextval setval set_config pg_terminate_backend pg_cancel_backend lo_unlink lo_import lo_export dblink dblink_exec pg_read_file pg_notify pg_advisory_lock pg_promote query_to_xml".split(" ");

function add(vocabulary: Vocabulary, names: Iterable<string>): void {
  for (const name of names) if (!vocabulary.known.has(name.toLowerCase())) vocabulary.known.set(name.toLowerCase(), name);
}

export function vocabularyOf(d: ServiceDescriptor): Vocabulary {
  const v: Vocabulary = { known: new Map(), families: [] };
  const protocols = new Set([d.protocol, ...(["graphql", "sql", "mcp"] as const).filter((k) => d[k]?.paths).map((k) => (k === "sql" ? "sql-http" : k))]);
  if (protocols.has("rest")) {
    for (const route of d.rest?.routes ?? []) add(v, [route.operation, `HEAD ${route.operation}`]);
    v.families.push(methodPath);
  }
  if (protocols.has("graphql")) {
    add(v, (d.graphql?.fields ?? []).map((f) => f.name));
    add(v, ["__typename", "__schema", "__type", "OPTIONS"]);
    v.families.push(graphqlName);
  }
  if (protocols.has("sql-http")) {
    add(v, SQL_STATEMENTS);
    add(v, SQL_SIDE_EFFECTS);
    add(v, READ_ONLY_BUILTINS);
    add(v, d.sql?.readOnlyFunctions ?? []);
    v.families.push(sqlName);
  }
  if (protocols.has("mcp")) {
    add(v, (d.mcp?.tools ?? []).map((t) => t.name).filter((n) => !isGlob(n)));
    add(v, Object.keys(MCP_METHODS));
    add(v, (d.mcp?.methods ?? []).map((m) => m.name));
    add(v, ["stream", "session/terminate", "OPTIONS", "response"]);
    // Descriptor globs (`list_*`) and unknown tools (classified by unknownToolEffect) are names too.
    v.families.push(mcpToolName);
  }
  if (d.proxy.tls === "passthrough") add(v, ["tunnel"]);
  return v;
}

/** Hosts no service claims: one action per request, named "METHOD /path". */
export const unknownVocabulary: Vocabulary = { known: new Map(), families: [methodPath] };

/** Could a glob match some name of the family? Judged by its literal text with wildcards filled in. */
function globFits(glob: string, family: (name: string) => boolean): boolean {
  if (glob.replace(/[*?]/g, "") === "") return true;
  const fills = ["a", "", "a /", "/"].map((star) => glob.replace(/\*/g, star).replace(/\?/g, "a"));
  return fills.some(family);
}

/**
 * Null when `pattern` can name an operation of the vocabulary, else why not (with a hint).
 * Patterns are compared case-insensitively, as rules match.
 */
export function checkOperation(pattern: string, vocabularies: readonly Vocabulary[]): string | null {
  const name = pattern.toLowerCase();
  if (vocabularies.some((v) => v.known.has(name))) return null;
  const lower = vocabularies.flatMap((v) => [...v.known.keys()]);
  const known = vocabularies.flatMap((v) => [...v.known.values()]);
  if (isGlob(name)) {
    const matcher = compileGlob(name);
    if (lower.some((k) => matcher(k))) return null;
    if (vocabularies.some((v) => v.families.some((f) => globFits(name, f)))) return null;
    return `matches no operation of the service${suggestion(name.replace(/[*?]/g, ""), known)}`;
  }
  // In an open vocabulary a near miss of a known name is a typo, not a new operation.
  const near = name.length >= 4 ? closest(name, known, name.length >= 8 ? 2 : 1) : null;
  if (near === null && vocabularies.some((v) => v.families.some((f) => f(name)))) return null;
  return `is not an operation of the service${suggestion(name, known)}`;
}

function suggestion(name: string, known: readonly string[]): string {
  const best = closest(name, known, 3);
  return best === null ? "" : ` (did you mean ${JSON.stringify(best)}?)`;
}
