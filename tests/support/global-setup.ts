import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { startEmbeddedDatabase, type EmbeddedDatabase } from "@/lib/db/embedded";

declare module "vitest" {
  export interface ProvidedContext {
    /** A superuser URL of the test server; each test file creates its own database from it. */
    adminDatabaseUrl: string;
  }
}

/**
 * Integration tests run against a real PostgreSQL: TEST_DATABASE_URL when given (a role allowed to
 * CREATE DATABASE), otherwise an embedded server in a temporary folder for this run.
 */
export default async function setup(project: TestProject) {
  const external = process.env.TEST_DATABASE_URL;
  if (external) {
    project.provide("adminDatabaseUrl", external);
    return;
  }
  const dir = await mkdtemp(path.join(tmpdir(), "bulkhead-test-pg-"));
  const port = 20000 + Math.floor(Math.random() * 20000);
  let db: EmbeddedDatabase;
  try {
    db = await startEmbeddedDatabase({ dataDir: dir, port, database: "postgres" });
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  project.provide("adminDatabaseUrl", db.url);
  return async () => {
    await db.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
