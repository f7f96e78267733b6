import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DEFAULT_ROLE_NAMES, quoteIdent, roleNameFromUrl, urlForRole } from "@/lib/db/roles/names";
import { PRIVILEGES } from "@/lib/db/roles/privileges";
import { grantsSql, rolesSql } from "@/lib/db/roles/sql";
import { childDatabaseEnv, externalDatabaseUrls } from "@/cli/runtime/database-roles";
import { loadCommonConfig } from "@/lib/config/common";

const OWNER = "postgresql://bulkhead_owner:o%40wn@db.internal:5432/bulkhead?sslmode=require";
const DASHBOARD = "postgresql://bulkhead_dashboard:d@db.internal:5432/bulkhead?sslmode=require";
const WORKER = "postgresql://bulkhead_worker:w@db.internal:5432/bulkhead?sslmode=require";

describe("database roles: names, printed SQL, and what each child process is given", () => {
  it("quotes identifiers and reads role names from URLs", () => {
    expect(quoteIdent('we"ird')).toBe('"we""ird"');
    expect(roleNameFromUrl("postgresql://Dash%20Board:x@h/db")).toBe("Dash Board");
    expect(roleNameFromUrl("postgresql://h/db")).toBeUndefined();
    expect(urlForRole(OWNER, "bulkhead_worker", "p@ss/word")).toBe("postgresql://bulkhead_worker:p%40ss%2Fword@db.internal:5432/bulkhead?sslmode=require");
  });

  it("names a role in its psql hint as an identifier, so an odd name cannot end the line early", () => {
    expect(rolesSql({ ...DEFAULT_ROLE_NAMES, owner: "bad name;" }, "bulkhead")).toContain('\\password "bad name;"');
  });

  it("docs/database.md shows exactly the SQL `bulkhead db roles` prints", () => {
    const doc = readFileSync("docs/database.md", "utf8");
    expect(doc).toContain(rolesSql(DEFAULT_ROLE_NAMES, "bulkhead").trimEnd());
  });

  it("never grants a runtime role UPDATE, DELETE or TRUNCATE on an audit table, nor INSERT of an event's chain columns", () => {
    for (const table of ["audit_events", "audit_checkpoints", "audit_chain_head"]) {
      for (const grant of Object.values(PRIVILEGES.tables[table]!)) {
        expect(Object.keys(grant).filter((p) => p !== "SELECT" && p !== "INSERT"), table).toEqual([]);
        if (table === "audit_chain_head") expect(grant.INSERT).toBeUndefined();
        else expect(grant.INSERT === undefined || Array.isArray(grant.INSERT), table).toBe(true); // column list, never the whole table
      }
    }
    // Only the launcher's checkpoint signer (as the dashboard's role) writes checkpoints.
    expect(PRIVILEGES.tables.audit_checkpoints!.worker.INSERT).toBeUndefined();
    for (const grant of Object.values(PRIVILEGES.tables.audit_events!)) {
      expect((grant.INSERT as readonly string[]).filter((c) => ["id", "seq", "prev_hash", "hash"].includes(c))).toEqual([]);
    }
    const sql = grantsSql(DEFAULT_ROLE_NAMES, "bulkhead");
    expect(sql).not.toMatch(/(UPDATE|DELETE|TRUNCATE)[^;]*ON TABLE "audit_(events|checkpoints|chain_head)"/);
    expect(sql).not.toMatch(/"bulkhead_owner"/);
  });

  it("gives each child only its own role's URL and removes every other database URL", () => {
    const config = loadCommonConfig({ DATABASE_URL: OWNER, BULKHEAD_DASHBOARD_DATABASE_URL: DASHBOARD, BULKHEAD_WORKER_DATABASE_URL: WORKER });
    const urls = externalDatabaseUrls(config);
    expect(urls.roles).toEqual({ dashboard: "bulkhead_dashboard", worker: "bulkhead_worker" });
    expect(childDatabaseEnv("worker", urls)).toEqual({
      DATABASE_URL: undefined,
      PGPASSWORD: undefined,
      BULKHEAD_DASHBOARD_DATABASE_URL: undefined,
      BULKHEAD_WORKER_DATABASE_URL: WORKER,
    });
    const dashboardEnv = { ...{ DATABASE_URL: OWNER, BULKHEAD_WORKER_DATABASE_URL: WORKER }, ...childDatabaseEnv("dashboard", urls) };
    expect(Object.entries(dashboardEnv).filter(([, v]) => v !== undefined)).toEqual([["BULKHEAD_DASHBOARD_DATABASE_URL", DASHBOARD]]);
  });

  it("refuses a child without its own role unless single-role was chosen", () => {
    const missing = externalDatabaseUrls(loadCommonConfig({ DATABASE_URL: OWNER, BULKHEAD_DASHBOARD_DATABASE_URL: DASHBOARD }));
    expect(missing.roles).toBeNull();
    expect(() => childDatabaseEnv("worker", missing)).toThrow(/BULKHEAD_WORKER_DATABASE_URL is required with an external database/);
    const chosen = externalDatabaseUrls(loadCommonConfig({ DATABASE_URL: OWNER, BULKHEAD_DASHBOARD_DATABASE_URL: DASHBOARD, BULKHEAD_DATABASE_SINGLE_ROLE: "1" }));
    expect(chosen.sharingOwner).toEqual(["worker"]);
    expect(childDatabaseEnv("worker", chosen).BULKHEAD_WORKER_DATABASE_URL).toBe(OWNER);
  });
});
