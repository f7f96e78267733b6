import { defineConfig } from "prisma/config";

// Prisma's CLI is used here only for `prisma generate`. Migrations are committed SQL applied by
// `bulkhead db migrate` (lib/db/migrate.ts), so the CLI never needs a database URL.
export default defineConfig({
  schema: "prisma/schema.prisma",
  migrations: { path: "prisma/migrations" },
});
