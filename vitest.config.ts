import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const root = fileURLToPath(new URL(".", import.meta.url)).replace(/\/$/, "");
const alias = { "@": root, "server-only": `${root}/tests/support/empty-module.ts` };

export default defineConfig({
  resolve: { alias },
  test: {
    projects: [
      {
        resolve: { alias },
        test: {
          name: "unit",
          include: ["tests/unit/**/*.test.ts"],
          testTimeout: 30_000,
        },
      },
      {
        resolve: { alias },
        test: {
          name: "integration",
          include: ["tests/integration/**/*.test.ts"],
          // One embedded PostgreSQL for the whole run; each test file gets its own database.
          globalSetup: ["tests/support/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          pool: "forks",
          fileParallelism: false,
        },
      },
      {
        resolve: { alias },
        test: {
          // Measurements that need the integration harness (npm run bench runs them); not tests.
          name: "bench",
          include: ["bench/**/*.bench-run.ts"],
          globalSetup: ["tests/support/global-setup.ts"],
          testTimeout: 600_000,
          hookTimeout: 120_000,
          pool: "forks",
          fileParallelism: false,
        },
      },
    ],
  },
});
